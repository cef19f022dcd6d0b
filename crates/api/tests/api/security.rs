//! The security regression suite (`crates/security`, also `make security` against a live
//! server) run against in-process servers: two instances on one database and Redis prefix,
//! door 001 on its own listener, the send limit at its default, and the real `chat-server`
//! binary as the operator's CLI. One test per check, each on a fresh deployment, so a failure
//! names the check (issue "Secure by default": a test for each item).

use chat_security::{Outcome, Target};
use chat_test_support::{JWT_SECRET, TestApp, TestEnv};

/// The operator's CLI: the real binary, on the test's database and Redis prefix.
fn cli(env: &TestEnv) -> chat_security::AdminHook {
    let vars = [
        ("DATABASE_URL", env.database_url.as_str()),
        ("CHAT_REDIS_PREFIX", env.redis_prefix.as_str()),
        ("CHAT_JWT_SECRET", JWT_SECRET),
        ("RUST_LOG", "warn"),
    ];
    chat_security::cli_hook(
        env!("CARGO_BIN_EXE_chat-server").to_owned(),
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

async fn run_check(name: &str) {
    let env = TestEnv::new().await;
    let settings = chat_api::Settings {
        door_avito: true,
        avito_listen: Some("127.0.0.1:0".into()),
        rate_send_per_min: 120,
        ..env.settings()
    };
    let main = TestApp::spawn_with(env.clone(), settings.clone()).await;
    let peer = TestApp::spawn_with(env.clone(), settings).await;
    let door = main.server.as_ref().unwrap().avito_addr.unwrap();
    let mut target = Target::new(&main.base).unwrap();
    target.peer = Some(chat_security::client::Http::new(&peer.base).unwrap());
    target.door001 = Some(chat_security::client::Http::new(&format!("http://{door}")).unwrap());
    target.jwt_secret = Some(JWT_SECRET.into());
    target.admin = Some(cli(&env));
    target.send_per_min = 120;
    let results = chat_security::run(&target, Some(name)).await;
    let ran: Vec<_> = results.iter().filter(|r| r.name == name).collect();
    assert_eq!(ran.len(), 1, "no check named {name}");
    assert_eq!(
        ran[0].outcome,
        Outcome::Pass,
        "{}",
        chat_security::report(&results)
    );
}

macro_rules! checks {
    ($($name:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_check(stringify!($name)).await;
        }
    )+};
}

checks!(
    no_token_is_refused_by_every_door,
    forged_tokens_are_refused_by_every_door,
    every_door_accepts_every_door_token_for_its_own_user,
    non_members_are_refused_on_every_door,
    logout_all_reaches_every_token_and_socket,
    refresh_token_reuse_revokes_everything,
    disable_user_stops_tokens_and_sockets_at_once,
    door001_is_not_on_the_main_listener,
    door001_is_a_sandbox,
    final_sigma_names_are_one_account,
    confusable_names_are_refused,
    every_lookup_uses_the_canonical_name,
    unknown_users_are_404,
    kick_answers_non_members_alike,
    socket_urls_ignore_forwarded_headers,
    misspelled_settings_stop_start_up,
    typing_is_throttled,
    socket_frame_floods_are_cut_off,
    bodies_over_the_limit_are_413,
    door004_joins_only_rooms,
    door004_room_lines_count_toward_the_send_limit,
);

#[test]
fn every_check_of_the_suite_has_a_test_here() {
    let here = include_str!("security.rs");
    for check in chat_security::checks() {
        assert!(
            here.contains(&format!("    {},\n", check.name)),
            "{} is not run by cargo test",
            check.name
        );
    }
}
