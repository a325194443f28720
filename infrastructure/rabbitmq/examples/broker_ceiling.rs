//! How many messages per second the local RabbitMQ takes, publisher confirms
//! on, with and without what ordermon's events need (a topic exchange,
//! persistence, message properties). Not ordermon's code path: plain lapin, to
//! tell the broker's ceiling from the client's.
//!
//! ```sh
//! cargo run --release -p ordermon-rabbitmq --example broker_ceiling -- [messages] [connections]
//! ```
//!
//! Each connection publishes `messages / connections` messages of 300 bytes in
//! batches of 1,000 (all in flight, then every confirm awaited) to a durable
//! queue of its own, once per variant. Needs a broker at
//! `ORDERMON_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::time::Instant;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

/// One way of publishing.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    topic: bool,
    persistent: bool,
    properties: bool,
    headers: bool,
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "default exchange, persistent, no properties",
        topic: false,
        persistent: true,
        properties: false,
        headers: false,
    },
    Variant {
        name: "topic exchange, persistent, no properties",
        topic: true,
        persistent: true,
        properties: false,
        headers: false,
    },
    Variant {
        name: "topic exchange, transient, id + type + headers",
        topic: true,
        persistent: false,
        properties: true,
        headers: true,
    },
    Variant {
        name: "topic exchange, persistent, id + type",
        topic: true,
        persistent: true,
        properties: true,
        headers: false,
    },
    Variant {
        name: "topic exchange, persistent, id + type + headers (ordermon's events)",
        topic: true,
        persistent: true,
        properties: true,
        headers: true,
    },
];

fn properties(v: Variant) -> BasicProperties {
    let mut p = BasicProperties::default();
    if v.persistent {
        p = p.with_delivery_mode(2);
    }
    if v.properties {
        p = p
            .with_message_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into())
            .with_content_type("application/json".into())
            .with_type("order.initialized.alice".into());
    }
    if v.headers {
        let mut h = FieldTable::default();
        h.insert(
            "x-ordermon-topic".into(),
            AMQPValue::LongString("order.initialized.alice".into()),
        );
        h.insert(
            "x-ordermon-key".into(),
            AMQPValue::LongString("alice".into()),
        );
        h.insert("x-ordermon-attempt".into(), AMQPValue::LongLongInt(1));
        p = p.with_headers(h);
    }
    p
}

async fn publisher(url: String, n: usize, v: Variant, me: usize) {
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("broker reachable");
    let ch = conn.create_channel().await.unwrap();
    let tag = format!("ordermon-ceiling-{}-{me}", std::process::id());
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(tag.as_str().into(), durable, FieldTable::default())
        .await
        .unwrap();
    let (exchange, key) = if v.topic {
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        ch.exchange_declare(
            tag.as_str().into(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            tag.as_str().into(),
            tag.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        (tag.clone(), "order.initialized.alice".to_owned())
    } else {
        (String::new(), tag.clone())
    };
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let payload = vec![b'x'; 300];
    let props = properties(v);
    let mut left = n;
    while left > 0 {
        let batch = left.min(1000);
        let mut confirms = Vec::with_capacity(batch);
        for _ in 0..batch {
            confirms.push(
                ch.basic_publish(
                    exchange.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    &payload,
                    props.clone(),
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            c.await.unwrap();
        }
        left -= batch;
    }
    ch.queue_delete(tag.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    if v.topic {
        ch.exchange_delete(tag.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(50_000);
    let connections = args.get(1).copied().unwrap_or(1).max(1);
    let url = std::env::var("ORDERMON_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    println!("{n} messages over {connections} connection(s), confirms on");
    for v in VARIANTS {
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|me| tokio::spawn(publisher(url.clone(), n / connections, v, me)))
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let rate = (n / connections * connections) as f64 / started.elapsed().as_secs_f64();
        println!("  {:<70} {rate:>8.0} msgs/s", v.name);
    }
}
