//! The encoder nodes' secrets (`node_tokens`): one token per node, issued
//! here and shown once; only its SHA-256 is stored, so a copy of the
//! database does not let anyone act as a node.

use sha2::{Digest, Sha256};

use super::{Db, StoreError, now_ms};
use crate::owner::new_random_id;

/// Queries on the `node_tokens` table.
#[derive(Clone)]
pub struct NodeTokens {
    db: Db,
}

/// A token's stored form: its SHA-256 in lowercase hex.
fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `a` and `b` are equal, taking as long whichever byte differs
/// (the hashes are of equal length; a length differing says nothing secret).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

impl NodeTokens {
    pub fn new(db: Db) -> Self {
        NodeTokens { db }
    }

    /// A new token for `node` (`vsn_` and 32 hex digits), replacing any
    /// earlier one: the old token stops working.
    pub async fn issue(&self, node: &str) -> Result<String, StoreError> {
        let token = format!("vsn_{}", new_random_id());
        sqlx::query(
            "INSERT INTO node_tokens (node, token_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET token_hash = excluded.token_hash, \
             created_at = excluded.created_at",
        )
        .bind(node)
        .bind(digest(&token))
        .bind(now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(token)
    }

    /// Whether `token` is `node`'s current token.
    pub async fn verify(&self, node: &str, token: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT token_hash FROM node_tokens WHERE node = $1")
                .bind(node)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.is_some_and(|(stored,)| same(&stored, &digest(token))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_whole() {
        let a = digest("vsn_1");
        assert!(same(&a, &digest("vsn_1")));
        assert!(!same(&a, &digest("vsn_2")));
        assert!(!same(&a, &a[..10]));
        assert_eq!(a.len(), 64);
    }

    crate::store_test!(node_tokens_verify_and_rotate, |db| async move {
        let tokens = NodeTokens::new(db);
        let first = tokens.issue("node-a").await.expect("issue");
        let hex = first.strip_prefix("vsn_").expect("prefix");
        assert!(
            hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{first}"
        );
        assert!(tokens.verify("node-a", &first).await.expect("verify"));
        assert!(!tokens.verify("node-b", &first).await.expect("verify"));
        assert!(!tokens.verify("node-a", "vsn_0").await.expect("verify"));
        let second = tokens.issue("node-a").await.expect("rotate");
        assert_ne!(first, second);
        assert!(!tokens.verify("node-a", &first).await.expect("verify"));
        assert!(tokens.verify("node-a", &second).await.expect("verify"));
    });
}
