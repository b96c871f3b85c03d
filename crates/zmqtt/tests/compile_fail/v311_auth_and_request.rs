// AUTH and request/response exist only on a 5.0 client.
use zmqtt::create_client;

async fn misuse() {
    let client = create_client("localhost").build();
    let _ = client.auth("SCRAM-SHA-1", None).await;
    let _ = client.request("service/time", "now").await;
}

fn main() {
    drop(misuse());
}
