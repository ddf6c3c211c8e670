//! The part of libtest's command line that cargo and cargo-nextest speak,
//! for a test binary with a `main()` of its own that holds one test.
//!
//! nextest first lists a binary's tests (`--list --format terse`, once with
//! `--ignored`), then runs each by name (`NAME --exact --nocapture`);
//! `cargo test` runs it with no arguments, or with a name filter.

/// What this run of the binary was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Print the test's name for the runner (done already), then exit.
    Listed,
    /// A filter excludes the test: exit without running it.
    FilteredOut,
    /// Run the test.
    Run,
}

/// Reads the command line for the test called `name`, printing the
/// listing when one is asked for.
pub fn invocation(name: &str) -> Invocation {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let exact = flag("--exact");
    let filters: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') && *a != "terse")
        .collect();
    let selected = filters.is_empty()
        || filters.iter().any(|f| {
            if exact {
                *f == name
            } else {
                name.contains(f.as_str())
            }
        });
    if flag("--list") {
        // The one test is not ignored: the `--ignored` listing is empty.
        if selected && !flag("--ignored") {
            println!("{name}: test");
        }
        return Invocation::Listed;
    }
    if !selected || flag("--ignored") {
        println!("running 0 tests\n0 passed, 0 failed");
        return Invocation::FilteredOut;
    }
    Invocation::Run
}
