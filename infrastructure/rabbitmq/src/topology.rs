//! Declaring the exchanges and each group's queues (idempotent: declaring what
//! exists with the same arguments is a no-op, so it runs on every (re)connect).

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};
use ordermon_domain::ports::SubscriptionSpec;

use crate::config::RabbitConfig;

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.to_owned()))
}

/// The topic exchange and the dead-letter exchange.
pub(crate) async fn declare_exchanges(
    channel: &Channel,
    config: &RabbitConfig,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange(),
            no_args(),
        )
        .await?;
    channel
        .exchange_declare(
            config.dead_letter_exchange().as_str().into(),
            ExchangeKind::Direct,
            durable_exchange(),
            no_args(),
        )
        .await
}

/// A group's queue (bound to its patterns), delay queues and dead-letter queue.
pub(crate) async fn declare_group(
    channel: &Channel,
    config: &RabbitConfig,
    spec: &SubscriptionSpec,
) -> Result<(), lapin::Error> {
    declare_exchanges(channel, config).await?;
    let queue = config.queue(&spec.group);
    let dlx = config.dead_letter_exchange();

    // Anything rejected without requeue (e.g. by a foreign consumer) ends in the DLQ.
    let mut args = FieldTable::default();
    args.insert("x-dead-letter-exchange".into(), text(&dlx));
    args.insert("x-dead-letter-routing-key".into(), text(&queue));
    channel
        .queue_declare(queue.as_str().into(), durable_queue(), args)
        .await?;
    for pattern in &spec.topics {
        channel
            .queue_bind(
                queue.as_str().into(),
                config.exchange.as_str().into(),
                pattern.as_str().into(),
                QueueBindOptions::default(),
                no_args(),
            )
            .await?;
    }

    for delay in &config.retry_delays {
        let mut args = FieldTable::default();
        let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ms));
        // Expired copies go back to the group's queue through the default exchange.
        args.insert("x-dead-letter-exchange".into(), text(""));
        args.insert("x-dead-letter-routing-key".into(), text(&queue));
        channel
            .queue_declare(
                config.retry_queue(&spec.group, *delay).as_str().into(),
                durable_queue(),
                args,
            )
            .await?;
    }

    let dlq = config.dead_letter_queue(&spec.group);
    channel
        .queue_declare(dlq.as_str().into(), durable_queue(), no_args())
        .await?;
    channel
        .queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            queue.as_str().into(),
            QueueBindOptions::default(),
            no_args(),
        )
        .await?;
    Ok(())
}

/// Deletes a group's queues (tests and decommissioning).
pub(crate) async fn delete_group(
    channel: &Channel,
    config: &RabbitConfig,
    group: &str,
) -> Result<(), lapin::Error> {
    let mut queues = vec![config.queue(group), config.dead_letter_queue(group)];
    queues.extend(
        config
            .retry_delays
            .iter()
            .map(|d| config.retry_queue(group, *d)),
    );
    for q in queues {
        channel
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await?;
    }
    Ok(())
}

/// Deletes the exchanges (tests and decommissioning).
pub(crate) async fn delete_exchanges(
    channel: &Channel,
    config: &RabbitConfig,
) -> Result<(), lapin::Error> {
    for e in [config.exchange.clone(), config.dead_letter_exchange()] {
        channel
            .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await?;
    }
    Ok(())
}

/// Empty AMQP arguments.
pub(crate) fn no_args() -> FieldTable {
    FieldTable::default()
}
