CREATE TABLE probe_notes (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL
);
