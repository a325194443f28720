-- The W3C trace context of the commit that wrote an outbox row (NULL when
-- traces are not recorded): the relay publishes the message as its child.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
