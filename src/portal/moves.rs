//! Where an anonymous browser's identity went when it signed in.
//!
//! Signing in moves the browser's uploads into the account, but an upload
//! still arriving (a multipart body, a tus `PATCH`) was started under the
//! anonymous identity. Its handler asks here, just before it records the
//! upload, whose it is now; so an upload in flight during sign-in ends up
//! in the account, not in an identity nobody holds any more.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::owner::Owner;

/// How long a move is remembered: longer than any upload takes to arrive.
const REMEMBER: Duration = Duration::from_secs(24 * 3600);

/// Anonymous identity → the account it signed in to.
#[derive(Debug, Default)]
pub struct OwnerMoves {
    moved: Mutex<HashMap<Owner, (Owner, Instant)>>,
}

impl OwnerMoves {
    /// Records that `from` signed in as `to`.
    pub fn record(&self, from: &Owner, to: &Owner) {
        let mut moved = self.moved.lock();
        moved.insert(from.clone(), (to.clone(), Instant::now()));
    }

    /// Whose an upload started by `owner` is now.
    pub fn current(&self, owner: &Owner) -> Owner {
        let moved = self.moved.lock();
        moved
            .get(owner)
            .map(|(to, _)| to.clone())
            .unwrap_or_else(|| owner.clone())
    }

    /// Forgets moves older than a day.
    pub fn forget_old(&self) {
        let mut moved = self.moved.lock();
        moved.retain(|_, (_, at)| at.elapsed() < REMEMBER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_identity_resolves_to_its_account() {
        let moves = OwnerMoves::default();
        let anon = Owner::anonymous();
        let other = Owner::anonymous();
        let ann = Owner::account("ann");
        assert_eq!(moves.current(&anon), anon);
        moves.record(&anon, &ann);
        assert_eq!(moves.current(&anon), ann);
        assert_eq!(moves.current(&other), other);
    }
}
