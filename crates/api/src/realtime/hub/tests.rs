//! The hub's delivery rules, without sockets.

use super::*;

fn deleted(chat: i64) -> Arc<Event> {
    Arc::new(Event::new(ChatEvent::ChatDeleted {
        chat_id: ChatId(chat),
    }))
}

#[tokio::test]
async fn delivers_to_subscribers_of_the_chat_only_until_unsubscribed() {
    let hub = Arc::new(Hub::default());
    let (tx, mut rx) = mpsc::channel(4);
    let conn = hub.connect(UserId(1), tx);
    let sub = hub.subscribe(ChatId(7), &conn);
    assert_eq!(hub.dispatch(deleted(8)), 0);
    assert_eq!(hub.dispatch(deleted(7)), 1);
    assert_eq!(rx.recv().await.unwrap().chat_event.chat_id(), ChatId(7));
    drop(sub);
    assert_eq!(hub.subscription_count(), 0);
    assert_eq!(hub.dispatch(deleted(7)), 0);
}

#[tokio::test]
async fn a_full_queue_signals_overflow_instead_of_growing() {
    let hub = Arc::new(Hub::default());
    let (tx, _rx) = mpsc::channel(1);
    let conn = hub.connect(UserId(1), tx);
    let _sub = hub.subscribe(ChatId(7), &conn);
    assert_eq!(hub.dispatch(deleted(7)), 1);
    assert_eq!(hub.dispatch(deleted(7)), 0);
    let signal = tokio::time::timeout(std::time::Duration::from_secs(1), conn.signal()).await;
    assert_eq!(
        signal.ok(),
        Some(Signal::Overflowed),
        "overflow was not signalled"
    );
}

#[tokio::test]
async fn a_new_member_is_reached_through_the_user_index_exactly_once() {
    let hub = Arc::new(Hub::default());
    let (tx, mut rx) = mpsc::channel(4);
    let conn = hub.connect(UserId(5), tx);
    let registration = hub.register_user(&conn);
    let joined = || {
        Arc::new(Event::new(ChatEvent::MemberJoined {
            chat_id: ChatId(7),
            user: chat_selectors::UserBrief {
                id: UserId(5),
                username: "e".into(),
            },
            by: None,
            since_seq: 0,
        }))
    };
    assert_eq!(hub.dispatch(joined()), 1);
    assert!(rx.recv().await.is_some());
    // Once on the chat too, it still gets the event once.
    let _sub = hub.subscribe(ChatId(7), &conn);
    assert_eq!(hub.dispatch(joined()), 1);
    drop(registration);
    drop(_sub);
    assert_eq!(hub.dispatch(joined()), 0);
}

#[tokio::test]
async fn revocation_reaches_the_sockets_of_older_tokens_only_while_tracked() {
    let hub = Arc::new(Hub::default());
    let (tx, _rx) = mpsc::channel(1);
    let old = hub.connect(UserId(1), tx.clone());
    let new = hub.connect(UserId(1), tx);
    let old_guard = hub.track(UserId(1), 100, &old);
    let _new_guard = hub.track(UserId(1), 200, &new);
    assert_eq!(hub.revoke(UserId(2), i64::MAX), 0);
    assert_eq!(hub.revoke(UserId(1), 150), 1);
    let signal = tokio::time::timeout(std::time::Duration::from_secs(1), old.signal()).await;
    assert_eq!(
        signal.ok(),
        Some(Signal::Revoked),
        "the older socket was not told"
    );
    let none = tokio::time::timeout(std::time::Duration::from_millis(50), new.signal()).await;
    assert!(none.is_err(), "the newer socket was told too");
    drop(old_guard);
    assert_eq!(hub.revoke(UserId(1), i64::MAX), 1);
    assert_eq!(hub.session_users(), vec![UserId(1)]);
}

#[test]
fn a_frame_is_rendered_once_per_event() {
    let event = deleted(1);
    let mut renders = 0;
    for _ in 0..3 {
        let frame = event.frame(FrameKind::Door002Group, |_| {
            renders += 1;
            Some("x".into())
        });
        assert_eq!(frame.as_deref(), Some("x"));
    }
    assert_eq!(renders, 1);
}

fn created(chat: i64, seq: i64) -> Arc<Event> {
    Arc::new(Event::new(ChatEvent::MessageCreated {
        chat_id: ChatId(chat),
        message: chat_selectors::MessageView {
            id: chat_domain::MessageId(seq),
            chat_id: ChatId(chat),
            seq,
            author: None,
            kind: chat_domain::MessageKind::System,
            text: "x".into(),
            client_id: None,
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted: false,
        },
        support_customer: None,
    }))
}

#[tokio::test]
async fn a_full_queue_of_a_socket_that_can_catch_up_reads_new_messages_back_but_closes_on_others() {
    let hub = Arc::new(Hub::default());
    let (tx, _rx) = mpsc::channel(1);
    let conn = hub.connect(UserId(1), tx);
    conn.repair_overflow();
    let _sub = hub.subscribe(ChatId(7), &conn);
    assert_eq!(hub.dispatch(created(7, 1)), 1);
    assert_eq!(hub.dispatch(created(7, 2)), 0, "the queue does not grow");
    let signal = tokio::time::timeout(std::time::Duration::from_secs(1), conn.signal()).await;
    assert_eq!(
        signal.ok(),
        Some(Signal::Resync),
        "no catch-up was asked for"
    );
    let more = tokio::time::timeout(std::time::Duration::from_millis(50), conn.signal());
    assert!(more.await.is_err(), "a new message does not close it");
    // A deletion cannot be read back: the socket is closed as a slow reader.
    assert_eq!(hub.dispatch(deleted(7)), 0);
    let signal = tokio::time::timeout(std::time::Duration::from_secs(1), conn.signal()).await;
    assert_eq!(
        signal.ok(),
        Some(Signal::Overflowed),
        "overflow was not signalled"
    );
}

#[tokio::test]
async fn a_socket_subscribing_late_learns_the_seq_of_what_it_was_not_offered() {
    let hub = Arc::new(Hub::default());
    let (tx, mut rx) = mpsc::channel(4);
    let conn = hub.connect(UserId(1), tx);
    assert_eq!(hub.dispatch(created(7, 5)), 0, "nobody on the chat yet");
    assert_eq!(hub.dispatch(created(7, 6)), 0);
    let (_sub, seen, since) = hub.subscribe_seen(ChatId(7), &conn);
    assert_eq!(seen, Some(6), "heard before the subscription");
    assert!(since.is_some(), "without a bus a shard is heard at once");
    let (_other, nothing, _) = hub.subscribe_seen(ChatId(8), &conn);
    assert_eq!(nothing, None);
    assert_eq!(hub.dispatch(created(7, 7)), 1, "offered from then on");
    assert!(rx.recv().await.is_some());
    // Without a bus every shard counts as heard from the first subscription on.
    assert!(hub.listening_since(ChatId(7)).is_some());
    assert!(hub.listening_since(ChatId(9)).is_none());
}
