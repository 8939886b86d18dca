//! Round trips and the shapes the manual and the seed need.
