//! The checks, grouped by what they attack. Each is an `async fn(&Target) -> Result<()>`: an
//! error is a failure (its text says what was let through), [`skip`] marks one the target cannot
//! run.

mod door001;
mod limits;
mod misc;
mod names;
mod tokens;

use anyhow::Result;

use crate::{Check, Outcome, Target};

/// Why a check did not run.
#[derive(Debug)]
struct Skipped(String);

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Skipped {}

/// An error that makes the check a skip instead of a failure.
fn skip(why: &str) -> anyhow::Error {
    Skipped(why.to_owned()).into()
}

fn outcome(result: Result<()>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(e) => match e.downcast_ref::<Skipped>() {
            Some(Skipped(why)) => Outcome::Skip(why.clone()),
            None => Outcome::Fail(format!("{e:#}")),
        },
    }
}

macro_rules! check {
    ($module:ident :: $name:ident, $what:literal) => {
        Check {
            name: stringify!($name),
            what: $what,
            run: |target: &Target| Box::pin(async move { outcome($module::$name(target).await) }),
        }
    };
}

/// Every check, in the order they run.
pub fn checks() -> Vec<Check> {
    vec![
        check!(
            tokens::no_token_is_refused_by_every_door,
            "every protected route and socket of every door refuses a missing token"
        ),
        check!(
            tokens::forged_tokens_are_refused_by_every_door,
            "alg none, wrong key, tampered, refresh-as-access (and with the secret: expired, no exp, wrong type) fail everywhere"
        ),
        check!(
            tokens::every_door_accepts_every_door_token_for_its_own_user,
            "a token of any door works on every door, always as its own user"
        ),
        check!(
            tokens::non_members_are_refused_on_every_door,
            "a non-member reads, posts and administers nothing in a private group, on any door"
        ),
        check!(
            tokens::logout_all_reaches_every_token_and_socket,
            "logout-all: every token of the user fails on every door and its sockets close with 1008"
        ),
        check!(
            tokens::refresh_token_reuse_revokes_everything,
            "a reused refresh token revokes every token and socket of its user"
        ),
        check!(
            tokens::disable_user_stops_tokens_and_sockets_at_once,
            "disable-user: tokens fail at once, sockets close, login is refused"
        ),
        check!(
            door001::door001_is_not_on_the_main_listener,
            "door 001 (no auth) is not served on the main listener"
        ),
        check!(
            door001::door001_is_a_sandbox,
            "door 001 sees only its own users and chats; its names do not take other doors' names"
        ),
        check!(
            names::final_sigma_names_are_one_account,
            "ΛΟΓΟΣ and λογος are one name: no second account, no captured login"
        ),
        check!(
            names::confusable_names_are_refused,
            "lookalikes of existing and reserved names are refused with 409 in each door's format"
        ),
        check!(
            names::every_lookup_uses_the_canonical_name,
            "login, add-friend, /ws/user/, door 000 ?username=, door 003, search find a user by any case"
        ),
        check!(
            misc::unknown_users_are_404,
            "unknown user ids and names are 404 in each door's format, never 500"
        ),
        check!(
            misc::kick_answers_non_members_alike,
            "a non-member's kick gets the same answer whether the target is a member or not"
        ),
        check!(
            misc::socket_urls_ignore_forwarded_headers,
            "door 002's socket URLs do not follow X-Forwarded-Host/Forwarded"
        ),
        check!(
            misc::misspelled_settings_stop_start_up,
            "a misspelled CHAT_* variable stops start-up naming the nearest setting"
        ),
        check!(
            limits::typing_is_throttled,
            "a typing flood reaches the other member at most once per 2 s"
        ),
        check!(
            limits::socket_frame_floods_are_cut_off,
            "a frame flood on any door's socket gets an error with retry_after, then a 1008 close"
        ),
        check!(
            limits::bodies_over_the_limit_are_413,
            "a body over the limit is 413 in each door's format"
        ),
        check!(
            limits::door004_joins_only_rooms,
            "door 004's join takes room chats only and writes nothing into others"
        ),
        check!(
            limits::door004_room_lines_count_toward_the_send_limit,
            "door 004 join/leave lines stop at the send limit"
        ),
    ]
}
