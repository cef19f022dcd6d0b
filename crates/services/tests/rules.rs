//! The services' own rules against a real PostgreSQL database and Redis, without HTTP: each test
//! has a database cloned from the migrated template and a Redis prefix of its own
//! (`chat-test-support` without its `app` feature: no server, no dependency on `chat-api`).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its message"
)]

use std::sync::Arc;

use chat_domain::{
    ChatId, ClientId, DomainError, MemberRole, MessageText, Title, UserId, Username,
};
use chat_domain::{ConflictReason, ForbiddenReason, NotFoundReason};
use chat_selectors::MessageView;
use chat_selectors::schema::{chat_members, chats, messages};
use chat_services::{
    Error, Store, create_group, delete_message, edit_message, invite_member, join_group,
    leave_group, mark_read, open_direct_chat, post_system_line, register, remove_member,
    send_message, set_member_role, start_writer,
};
use chat_test_support::TestEnv;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// A test's database and Redis prefix, and a store on them (no message writer started). The
/// environment is dropped (database and keys removed) at the end of the test.
async fn world() -> (Arc<TestEnv>, Store) {
    let env = TestEnv::new().await;
    let store = Store::new(env.store().await);
    (env, store)
}

/// A user without password or email (no bcrypt: fast).
async fn user(store: &Store, name: &str) -> UserId {
    let username = Username::parse(name).expect("a valid username");
    register(store, &username, None, None, 4).await.unwrap().id
}

fn text(raw: &str) -> MessageText {
    MessageText::parse(raw, 4096).expect("a valid text")
}

fn client_id(raw: &str) -> ClientId {
    ClientId::parse(raw).expect("a valid client_id")
}

/// A public group of `owner` with `members` in it from the start.
async fn group(store: &Store, owner: UserId, members: &[UserId]) -> ChatId {
    let title = Title::parse("G").expect("a valid title");
    create_group(store, owner, None, &title, false, members)
        .await
        .unwrap()
        .id
}

/// The chat's `last_seq` as stored (no cache).
async fn last_seq(store: &Store, chat: ChatId) -> i64 {
    let mut conn = store.conn().await.unwrap();
    chats::table
        .find(chat.0)
        .select(chats::last_seq)
        .first(&mut conn)
        .await
        .unwrap()
}

/// The chat's owner as stored.
async fn owner(store: &Store, chat: ChatId) -> Option<i64> {
    let mut conn = store.conn().await.unwrap();
    chats::table
        .find(chat.0)
        .select(chats::owner_id)
        .first(&mut conn)
        .await
        .unwrap()
}

/// Every stored message of the chat in seq order: (seq, author, text).
async fn stored(store: &Store, chat: ChatId) -> Vec<(i64, Option<i64>, String)> {
    let mut conn = store.conn().await.unwrap();
    messages::table
        .filter(messages::chat_id.eq(chat.0))
        .order(messages::seq.asc())
        .select((messages::seq, messages::author_id, messages::text))
        .load(&mut conn)
        .await
        .unwrap()
}

/// `user`'s read marker and role in the chat as stored; `None` when not a member.
async fn member(store: &Store, chat: ChatId, user: UserId) -> Option<(i64, String)> {
    let mut conn = store.conn().await.unwrap();
    chat_members::table
        .find((chat.0, user.0))
        .select((chat_members::last_read_seq, chat_members::role))
        .first(&mut conn)
        .await
        .optional()
        .unwrap()
}

/// The refusal of a use case that should have been refused.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: chat_services::Result<T>) -> DomainError {
    match result {
        Err(Error::Domain(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_send_stores_the_next_seq_and_the_same_client_id_returns_the_original() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, alice, &[bob]).await;

    let first = send_message(&store, alice, chat, &text("one"), None)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.message.seq, 1);
    let key = client_id("c-1");
    let second = send_message(&store, bob, chat, &text("two"), Some(&key))
        .await
        .unwrap();
    assert!(second.created);
    assert_eq!(second.message.seq, 2);
    assert_eq!(second.message.client_id.as_deref(), Some("c-1"));

    // A retry is answered with the original, whatever its text, and stores nothing.
    let again = send_message(&store, bob, chat, &text("two, resent"), Some(&key))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.message.id, second.message.id);
    assert_eq!((again.message.seq, again.message.text.as_str()), (2, "two"));
    assert_eq!(last_seq(&store, chat).await, 2, "a retry uses no seq");

    // The key is the author's own: another author's same client_id is another message.
    let alices = send_message(&store, alice, chat, &text("three"), Some(&key))
        .await
        .unwrap();
    assert!(alices.created);
    assert_eq!(alices.message.seq, 3);
    let seqs: Vec<i64> = stored(&store, chat).await.iter().map(|m| m.0).collect();
    assert_eq!(seqs, [1, 2, 3]);

    // Sending reads the chat up to one's own message.
    assert_eq!(member(&store, chat, bob).await.unwrap().0, 2);
    assert_eq!(member(&store, chat, alice).await.unwrap().0, 3);
}

#[tokio::test]
async fn a_non_member_cannot_send_and_uses_no_seq() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let carol = user(&store, "carol").await;
    let chat = group(&store, alice, &[]).await;
    send_message(&store, alice, chat, &text("one"), None)
        .await
        .unwrap();

    let refusal = refused(send_message(&store, carol, chat, &text("let me in"), None).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotMember)),
        "{refusal:?}"
    );
    let key = client_id("k-1");
    let refusal = refused(send_message(&store, carol, chat, &text("again"), Some(&key)).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotMember)),
        "{refusal:?}"
    );
    let refusal =
        refused(send_message(&store, alice, ChatId(chat.0 + 1000), &text("?"), None).await);
    assert!(
        matches!(refusal, DomainError::NotFound(NotFoundReason::Chat)),
        "{refusal:?}"
    );

    assert_eq!(last_seq(&store, chat).await, 1);
    let next = send_message(&store, alice, chat, &text("two"), None)
        .await
        .unwrap();
    assert_eq!(next.message.seq, 2, "no gap where the refused sends were");
    assert!(
        stored(&store, chat)
            .await
            .iter()
            .all(|(_, author, _)| *author == Some(alice.0))
    );
}

#[tokio::test]
async fn a_client_id_used_in_another_chat_is_a_conflict() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let first = group(&store, alice, &[]).await;
    let second = group(&store, alice, &[]).await;
    let key = client_id("once");
    send_message(&store, alice, first, &text("here"), Some(&key))
        .await
        .unwrap();
    let refusal = refused(send_message(&store, alice, second, &text("there"), Some(&key)).await);
    assert!(
        matches!(
            refusal,
            DomainError::Conflict(ConflictReason::ClientIdElsewhere)
        ),
        "{refusal:?}"
    );
    assert_eq!(last_seq(&store, second).await, 0);
}

#[tokio::test]
async fn read_markers_never_move_back_nor_beyond_the_last_message() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let chat = group(&store, alice, &[bob]).await;
    for line in ["one", "two", "three"] {
        send_message(&store, alice, chat, &text(line), None)
            .await
            .unwrap();
    }
    assert_eq!(member(&store, chat, bob).await.unwrap().0, 0);

    mark_read(&store, bob, chat, 2).await.unwrap();
    assert_eq!(member(&store, chat, bob).await.unwrap().0, 2);
    mark_read(&store, bob, chat, 1).await.unwrap();
    assert_eq!(member(&store, chat, bob).await.unwrap().0, 2, "moved back");
    mark_read(&store, bob, chat, 3).await.unwrap();
    assert_eq!(member(&store, chat, bob).await.unwrap().0, 3);

    for seq in [4, -1] {
        let refusal = refused(mark_read(&store, bob, chat, seq).await);
        let DomainError::Invalid(fields) = refusal else {
            panic!("seq {seq}: {refusal:?}");
        };
        assert!(fields.contains_key("seq"), "{fields:?}");
    }
    assert_eq!(member(&store, chat, bob).await.unwrap().0, 3);
    let refusal = refused(mark_read(&store, carol, chat, 1).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotMember)),
        "{refusal:?}"
    );
}

#[tokio::test]
async fn the_owner_leaving_hands_the_group_to_an_admin_and_an_empty_group_to_the_next_joiner() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let dave = user(&store, "dave").await;
    // bob is the longest-standing member after alice, but carol is an admin.
    let chat = group(&store, alice, &[bob]).await;
    invite_member(&store, alice, chat, carol).await.unwrap();
    set_member_role(&store, alice, chat, carol, MemberRole::Admin)
        .await
        .unwrap();

    leave_group(&store, alice, chat).await.unwrap();
    assert_eq!(owner(&store, chat).await, Some(carol.0));
    assert_eq!(member(&store, chat, carol).await.unwrap().1, "owner");
    assert_eq!(member(&store, chat, alice).await, None);
    let lines = stored(&store, chat).await;
    let last = lines.last().unwrap();
    assert_eq!((last.1, last.2.as_str()), (None, "alice left the group"));
    assert_eq!(last.0, last_seq(&store, chat).await);

    // Leaving twice is refused; a direct chat cannot be left.
    let refusal = refused(leave_group(&store, alice, chat).await);
    assert!(
        matches!(
            refusal,
            DomainError::Forbidden(ForbiddenReason::NoLongerMember)
        ),
        "{refusal:?}"
    );
    let (direct, _) = open_direct_chat(&store, alice, bob).await.unwrap();
    let refusal = refused(leave_group(&store, alice, direct.id).await);
    assert!(
        matches!(
            refusal,
            DomainError::Forbidden(ForbiddenReason::LeaveNotGroup)
        ),
        "{refusal:?}"
    );

    leave_group(&store, carol, chat).await.unwrap();
    assert_eq!(owner(&store, chat).await, Some(bob.0));
    leave_group(&store, bob, chat).await.unwrap();
    assert_eq!(owner(&store, chat).await, None, "no one left to own it");
    join_group(&store, dave, chat).await.unwrap();
    assert_eq!(owner(&store, chat).await, Some(dave.0));
    let (read, role) = member(&store, chat, dave).await.unwrap();
    assert_eq!(role, "owner");
    assert_eq!(read, last_seq(&store, chat).await, "the join line is read");
    let refusal = refused(join_group(&store, dave, chat).await);
    assert!(
        matches!(
            refusal,
            DomainError::Conflict(ConflictReason::AlreadyMember)
        ),
        "{refusal:?}"
    );
}

#[tokio::test]
async fn the_owner_removes_anyone_an_admin_plain_members_and_no_one_themselves() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let carol = user(&store, "carol").await;
    let dave = user(&store, "dave").await;
    let erin = user(&store, "erin").await;
    let frank = user(&store, "frank").await;
    let chat = group(&store, alice, &[bob, carol, dave]).await;
    set_member_role(&store, alice, chat, carol, MemberRole::Admin)
        .await
        .unwrap();

    remove_member(&store, carol, chat, bob).await.unwrap();
    assert_eq!(member(&store, chat, bob).await, None);
    assert_eq!(
        stored(&store, chat).await.last().unwrap().2,
        "carol removed bob"
    );
    let before = last_seq(&store, chat).await;
    for (actor, target, why) in [
        (carol, alice, "an admin removes the owner"),
        (dave, carol, "a member removes an admin"),
        (carol, carol, "an admin removes herself"),
        (alice, alice, "the owner removes herself"),
        // Refused before the target is looked at: the answer does not tell who is a member.
        (erin, frank, "a non-member removes a non-member"),
    ] {
        let refusal = refused(remove_member(&store, actor, chat, target).await);
        assert!(
            matches!(refusal, DomainError::Forbidden(_)),
            "{why}: {refusal:?}"
        );
    }
    let refusal = refused(remove_member(&store, alice, chat, bob).await);
    assert!(
        matches!(refusal, DomainError::NotFound(NotFoundReason::Member)),
        "{refusal:?}"
    );
    assert_eq!(
        last_seq(&store, chat).await,
        before,
        "refusals store nothing"
    );
    assert!(member(&store, chat, carol).await.is_some());

    remove_member(&store, alice, chat, carol).await.unwrap();
    assert_eq!(member(&store, chat, carol).await, None);
    let refusal = refused(send_message(&store, carol, chat, &text("still here?"), None).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotMember)),
        "{refusal:?}"
    );
}

#[tokio::test]
async fn a_direct_chat_is_one_per_pair_and_never_with_yourself() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let (chat, created) = open_direct_chat(&store, alice, bob).await.unwrap();
    assert!(created);
    let (again, created) = open_direct_chat(&store, bob, alice).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, chat.id);
    assert!(member(&store, chat.id, alice).await.is_some());
    assert!(member(&store, chat.id, bob).await.is_some());
    let refusal = refused(open_direct_chat(&store, alice, alice).await);
    let DomainError::Invalid(fields) = refusal else {
        panic!("{refusal:?}");
    };
    assert!(fields.contains_key("user_id"), "{fields:?}");
    let refusal = refused(open_direct_chat(&store, alice, UserId(bob.0 + 1000)).await);
    assert!(
        matches!(refusal, DomainError::NotFound(NotFoundReason::User)),
        "{refusal:?}"
    );
}

#[tokio::test]
async fn only_the_author_edits_or_deletes_a_message_and_a_deleted_one_stays_deleted() {
    let (_env, store) = world().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, alice, &[bob]).await;
    let sent = send_message(&store, alice, chat, &text("draft"), None)
        .await
        .unwrap()
        .message;
    let system: MessageView = post_system_line(&store, chat, "the topic changed")
        .await
        .unwrap();

    let refusal = refused(edit_message(&store, bob, chat, sent.seq, &text("mine now")).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotAuthor)),
        "{refusal:?}"
    );
    let refusal = refused(delete_message(&store, bob, chat, sent.seq).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotAuthor)),
        "{refusal:?}"
    );
    let refusal = refused(edit_message(&store, alice, chat, system.seq, &text("no")).await);
    assert!(
        matches!(refusal, DomainError::Forbidden(ForbiddenReason::NotAuthor)),
        "{refusal:?}"
    );

    let edited = edit_message(&store, alice, chat, sent.seq, &text("final"))
        .await
        .unwrap();
    assert_eq!((edited.seq, edited.text.as_str()), (sent.seq, "final"));
    assert!(edited.edited_at.is_some());
    let deleted = delete_message(&store, alice, chat, sent.seq).await.unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.text, "");
    let refusal = refused(edit_message(&store, alice, chat, sent.seq, &text("back")).await);
    assert!(
        matches!(refusal, DomainError::NotFound(NotFoundReason::Message)),
        "{refusal:?}"
    );
    assert_eq!(
        stored(&store, chat).await[0].2,
        "",
        "the tombstone keeps no text"
    );
    assert_eq!(last_seq(&store, chat).await, 2, "edits use no seq");
}

#[tokio::test]
async fn over_the_send_limit_a_new_message_is_refused_but_a_retry_gets_its_original() {
    let env = TestEnv::new().await;
    let mut storage = env.store().await;
    storage.send_per_min = 2;
    let store = Store::new(storage);
    let alice = user(&store, "alice").await;
    let chat = group(&store, alice, &[]).await;
    let key = client_id("k-2");
    send_message(&store, alice, chat, &text("one"), None)
        .await
        .unwrap();
    let second = send_message(&store, alice, chat, &text("two"), Some(&key))
        .await
        .unwrap();
    let refusal = refused(send_message(&store, alice, chat, &text("three"), None).await);
    assert!(
        matches!(refusal, DomainError::RateLimited { retry_after_secs } if retry_after_secs <= 60),
        "{refusal:?}"
    );
    let retry = send_message(&store, alice, chat, &text("two"), Some(&key))
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.message.id, second.message.id);
    assert_eq!(last_seq(&store, chat).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_writer_concurrent_sends_to_one_chat_are_gapless_and_stored_once() {
    let (_env, store) = world().await;
    start_writer(&store, 2).unwrap();
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, alice, &[bob]).await;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..60 {
        let store = store.clone();
        let author = if i % 2 == 0 { alice } else { bob };
        // Each send numbered ..9 reuses the client_id of its author's send before it (..7).
        let key = client_id(&format!("k-{}", if i % 10 == 9 { i - 2 } else { i }));
        sends.spawn(async move {
            send_message(&store, author, chat, &text(&format!("m{i}")), Some(&key)).await
        });
    }
    let mut created = 0;
    while let Some(sent) = sends.join_next().await {
        if sent.expect("a send task panicked").unwrap().created {
            created += 1;
        }
    }
    let seqs: Vec<i64> = stored(&store, chat).await.iter().map(|m| m.0).collect();
    assert_eq!(seqs, (1..=created).collect::<Vec<i64>>(), "gapless");
    assert_eq!(created, 54, "six retries stored nothing");
    assert_eq!(last_seq(&store, chat).await, created);
}
