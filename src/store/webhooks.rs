//! The tokens of signed webhook requests already taken, so a replayed request is refused (Mailgun signs a
//! timestamp and a token, not the body). Tokens are stored as hashes and forgotten once they expire.

use anyhow::Context;
use jiff::Timestamp;

use super::{Store, on_pool};
use crate::clock::to_millis;

impl Store {
    /// Records `token_hash` for `provider` until `expires_at`; `false` when it was recorded before and has not
    /// expired (a replay). Expired tokens are deleted on the way.
    pub async fn claim_webhook_token(
        &self,
        provider: &str,
        token_hash: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let forget = "DELETE FROM webhook_tokens WHERE expires_at < $1";
        let claim = "INSERT INTO webhook_tokens (provider, token_hash, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (provider, token_hash) DO NOTHING";
        let inserted = on_pool!(self, pool => {
            let mut tx = pool.begin_with(super::write_begin(pool)).await?;
            sqlx::query(forget).bind(to_millis(now)).execute(&mut *tx).await?;
            let done = sqlx::query(claim)
                .bind(provider)
                .bind(token_hash)
                .bind(to_millis(expires_at))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done.rows_affected() == 1)
        })
        .context("cannot record the webhook token")?;
        Ok(inserted)
    }

    /// Forgets a claimed token whose request could not be stored, so the provider's retry is taken.
    pub async fn release_webhook_token(&self, provider: &str, token_hash: &str) -> anyhow::Result<()> {
        let sql = "DELETE FROM webhook_tokens WHERE provider = $1 AND token_hash = $2";
        on_pool!(self, pool => sqlx::query(sql).bind(provider).bind(token_hash).execute(pool).await.map(|_| ()))
            .context("cannot forget the webhook token")?;
        Ok(())
    }
}
