//! Reply-size fitting for the seed's page.
//!
//! The seed's Flash client reads two bytes of the length field, so a reply
//! it parses must have a length of at most three digits: replies to
//! `JobQueue`, to a `JobStatusList` holding one job, and failures stay below
//! [`SEED_REPLY_BUDGET`] bytes (carbon-protocol.md §1). What gives way is
//! free text, shortened with an ellipsis; `JobCommand QueryInfo` still
//! returns it whole.

use super::JobEntry;
use crate::carbon::text;
use crate::carbon::xml::attr_cost;

/// Replies the seed's client parses stay below this many payload bytes.
pub const SEED_REPLY_BUDGET: usize = 999;

/// What marks a shortened text.
pub const ELLIPSIS: &str = "...";

/// `text` itself if it costs at most `room` bytes as an attribute value,
/// else its longest prefix that fits together with an ellipsis.
pub fn fit(text: &str, room: usize) -> String {
    if attr_cost(text) <= room {
        return text.to_owned();
    }
    let mut used = ELLIPSIS.len();
    let mut kept = String::new();
    for c in text.chars() {
        used += attr_cost(c.encode_utf8(&mut [0; 4]));
        if used > room {
            break;
        }
        kept.push(c);
    }
    if room >= ELLIPSIS.len() {
        kept.push_str(ELLIPSIS);
    }
    kept
}

/// The free texts of a record, in a fixed order, for shortening.
fn texts_mut(job: &mut JobEntry) -> Vec<&mut String> {
    let mut texts = vec![
        &mut job.name,
        &mut job.description,
        &mut job.source_description,
        &mut job.user,
    ];
    texts.extend(job.errors.iter_mut());
    texts.extend(job.warnings.iter_mut());
    texts
}

/// A reply holding one job, rendered by `render` within
/// [`SEED_REPLY_BUDGET`]: the room the fixed attributes leave is shared
/// fairly between the free texts (name, description, source, user, failure
/// reasons); a text that needs less than its share leaves the rest to the
/// others. Optional extension attributes are dropped first if even that
/// does not fit.
pub fn one_job_within_budget(job: &JobEntry, render: impl Fn(&JobEntry) -> String) -> String {
    let whole = render(job);
    if text::encoded_len(&whole) <= SEED_REPLY_BUDGET {
        return whole;
    }
    let mut job = job.clone();
    // Each failure item costs its element whatever its text: keep two.
    job.errors.truncate(2);
    job.warnings.truncate(2);
    // Measure the fixed part with a one-byte placeholder in each text, so
    // that the names of attributes written only when set count too.
    let mut originals: Vec<String> = texts_mut(&mut job)
        .into_iter()
        .map(|t| std::mem::replace(t, "x".to_owned()))
        .collect();
    let mut fixed = text::encoded_len(&render(&job)).saturating_sub(originals.len());
    if fixed + 4 * originals.len() > SEED_REPLY_BUDGET {
        job.fps = None;
        job.speed = None;
        job.queue_position = None;
        fixed = text::encoded_len(&render(&job)).saturating_sub(originals.len());
    }
    let mut room = SEED_REPLY_BUDGET.saturating_sub(fixed);
    let mut order: Vec<usize> = (0..originals.len()).collect();
    order.sort_by_key(|&i| attr_cost(&originals[i]));
    for (done, &i) in order.iter().enumerate() {
        let share = room / (order.len() - done);
        originals[i] = fit(&originals[i], share);
        room = room.saturating_sub(attr_cost(&originals[i]));
    }
    for (slot, text) in texts_mut(&mut job).into_iter().zip(originals) {
        *slot = text;
    }
    render(&job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_short_text_and_cuts_long_text() {
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcdef", 5), "ab...");
        assert_eq!(fit("a&b&c", 9), "a&...");
        assert_eq!(fit("ééé", 12), "é...");
    }
}
