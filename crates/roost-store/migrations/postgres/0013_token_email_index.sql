-- Links sent to one address lately: the hourly cap on reset and verification mails.
CREATE INDEX user_tokens_email ON user_tokens (email, purpose, created_at);
