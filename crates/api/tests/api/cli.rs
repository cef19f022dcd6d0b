//! The `chat-server` binary as an operator runs it: start-up refuses misspelled settings (in the
//! environment and in the TOML file) naming the nearest setting, and the user commands answer
//! clearly for a user that does not exist.

use std::process::Command;

fn chat_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
    command.env("RUST_LOG", "warn");
    for (name, _) in std::env::vars() {
        if name.starts_with("CHAT_") {
            command.env_remove(name);
        }
    }
    command
}

#[test]
fn a_misspelled_variable_stops_start_up_before_anything_runs() {
    let out = chat_server()
        .args(["migrate"])
        .env("CHAT_BCRYPT_COS", "4")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CHAT_BCRYPT_COS is not a setting (did you mean CHAT_BCRYPT_COST?)"),
        "{stderr}"
    );
}

#[test]
fn a_misspelled_file_key_stops_start_up() {
    let dir = std::env::temp_dir().join(format!("chat-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chat.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nbcrypt_cos = 4\n").unwrap();
    let out = chat_server()
        .args(["migrate"])
        .env("CHAT_CONFIG", &file)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"bcrypt_cos\" is not a setting (did you mean \"bcrypt_cost\"?)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_user_of_nobody_says_so() {
    let env = chat_test_support::TestEnv::new().await;
    let out = chat_server()
        .args(["disable-user", "nobody_at_all"])
        .env("DATABASE_URL", &env.database_url)
        .env("CHAT_REDIS_PREFIX", &env.redis_prefix)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("User not found."), "{stderr}");
}
