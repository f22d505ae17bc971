-- The contact form's messages. The id is the one the API answered with; the idempotency key is the
-- client's, unique so that a repeated submission is stored once (NULLs are distinct: no key, no check).
CREATE TABLE contact_messages (
  id uuid PRIMARY KEY,
  idempotency_key text UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
  received_at timestamptz NOT NULL,
  name text NOT NULL,
  email text NOT NULL,
  message text NOT NULL
);

-- Operators list the messages oldest first.
CREATE INDEX contact_messages_received_at ON contact_messages (received_at, id);
