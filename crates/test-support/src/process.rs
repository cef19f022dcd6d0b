//! Tests that need a process of their own: what they measure or install is process-wide (the
//! metrics recorder, the global log subscriber), and the other tests of the one test binary
//! would change it under them.

use std::process::Command;

/// Tells a child process which test it was started for.
const OWN_PROCESS: &str = "CHAT_TEST_OWN_PROCESS";

/// Runs the calling test alone in a new process of the same test binary.
///
/// Nothing else runs in that process. `true` in the test as the harness started it: the child
/// passed and the caller returns at once (a failure of the child panics here with its output).
/// `false` in the child: the caller goes on with its body.
///
/// ```text
/// #[tokio::test]
/// async fn counts_what_the_process_did() {
///     if chat_test_support::own_process!() {
///         return;
///     }
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! own_process {
    () => {{
        fn here() {}
        $crate::run_in_own_process(::std::any::type_name_of_val(&here))
    }};
}

/// What [`own_process!`] expands to: `here` is the type name of a function declared in the test
/// (`<crate>::<module>::<test>[::{{closure}}]::here`), from which the test's name is taken.
pub fn run_in_own_process(here: &str) -> bool {
    let mut path: Vec<&str> = here.split("::").filter(|p| *p != "{{closure}}").collect();
    path.pop();
    let name = path.get(1..).unwrap_or_default().join("::");
    if std::env::var(OWN_PROCESS).is_ok_and(|started_for| started_for == name) {
        return false;
    }
    let binary = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(binary)
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(OWN_PROCESS, &name)
        .output()
        .expect("the test binary did not start");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in a process of its own ({}):\n{stdout}\n{stderr}",
        output.status
    );
    true
}
