// 5.0 PUBLISH properties on a 3.1.1 client.
use zmqtt::{create_client, PublishProperties};

async fn misuse() {
    let client = create_client("localhost").build();
    let _ = client
        .publish("topic", "payload")
        .properties(PublishProperties::default())
        .await;
}

fn main() {
    drop(misuse());
}
