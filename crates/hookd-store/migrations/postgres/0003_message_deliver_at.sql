-- When a message's deliveries were first due (ms), if the producer scheduled it.
ALTER TABLE messages ADD COLUMN deliver_at BIGINT;
