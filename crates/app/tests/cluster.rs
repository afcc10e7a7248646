//! Several nodes on one PostgreSQL and one Redis (issue 12): what one node
//! publishes reaches the connections of the others.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use common::cluster::Cluster;
use common::resume::{add_member, post};
use common::ws::WsClient;
use serde_json::json;

#[actix_web::test]
async fn a_message_sent_on_one_node_reaches_a_member_on_the_other() {
    let Some(cluster) = Cluster::spawn(2, &[]).await else {
        return;
    };
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let owner = a.user("owner@example.com").await;
    let member = a.user("member@example.com").await;
    let room = a
        .create_room(&owner, json!({ "name": "Across", "visibility": "private" }))
        .await["id"]
        .as_str()
        .expect("room id")
        .to_owned();
    add_member(a, &owner, &room, &member).await;
    let (mut listener, _) = WsClient::connect_ready(b, &member.token).await;
    post(a, &owner, &room, "hello from A").await;
    let event = listener.expect_type("message").await;
    assert_eq!(event["message"]["body"], "hello from A", "{event}");
}
