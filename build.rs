//! Checks that the browser libraries the portal embeds are installed (npm,
//! pinned in `package-lock.json`) and tells the crate hls.js's version, so
//! its URL changes with it and it can be cached as immutable.
//!
//! `src/portal/pages.rs` embeds `node_modules/hls.js/dist/hls.min.js`; a
//! missing file would otherwise be a bare `include_bytes!` error.

use std::path::Path;

const HLS_JS: &str = "node_modules/hls.js/dist/hls.min.js";
const HLS_JS_PACKAGE: &str = "node_modules/hls.js/package.json";
const LOCK: &str = "package-lock.json";

fn main() {
    for path in [HLS_JS, HLS_JS_PACKAGE, LOCK, "package.json"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if !Path::new(HLS_JS).is_file() {
        fail("node_modules/hls.js is missing");
    }
    let installed = read(HLS_JS_PACKAGE)
        .as_deref()
        .and_then(first_version)
        .unwrap_or_else(|| fail("node_modules/hls.js/package.json names no version"));
    let locked = read(LOCK)
        .as_deref()
        .and_then(|lock| lock.split("\"node_modules/hls.js\"").nth(1))
        .and_then(first_version)
        .unwrap_or_else(|| fail("package-lock.json does not pin hls.js"));
    if installed != locked {
        fail(&format!(
            "node_modules/hls.js is {installed} but package-lock.json pins {locked}"
        ));
    }
    println!("cargo:rustc-env=HLS_JS_VERSION={installed}");
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The value of the first `"version": "…"` in `json` (enough for the two
/// files read here, whose first version key is the package's own).
fn first_version(json: &str) -> Option<String> {
    let after = json.split("\"version\"").nth(1)?;
    let value = after.split('"').nth(1)?;
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
    plain.then(|| value.to_owned())
}

fn fail(why: &str) -> ! {
    eprintln!("error: {why}: run `make run` or `npm ci` first (installs the pinned hls.js)");
    println!("cargo:warning={why}: run `make run` or `npm ci` first");
    std::process::exit(1);
}
