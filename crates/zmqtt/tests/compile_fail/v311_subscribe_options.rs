// The 5.0 subscription options on a 3.1.1 client.
use zmqtt::create_client;

async fn misuse() {
    let client = create_client("localhost").build();
    let _ = client.subscribe(["a/#"]).no_local(true).await;
    let _ = client.subscribe(["b/#"]).subscription_identifier(7).await;
}

fn main() {
    drop(misuse());
}
