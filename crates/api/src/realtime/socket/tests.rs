//! The frame budget.

use super::*;

fn limits(per_sec: u32, burst: u32) -> SocketLimits {
    SocketLimits {
        frames_per_sec: per_sec,
        frame_burst: burst,
        ..SocketLimits::from_settings(&Settings::default(), tokio::sync::watch::channel(false).1)
    }
}

#[test]
fn the_frame_budget_lets_a_burst_through_then_refuses_until_it_refills() {
    let mut budget = FrameBudget::new(&limits(50, 3));
    assert!((0..3).all(|_| budget.take().is_ok()));
    let wait = budget.take().unwrap_err();
    assert!(wait <= Duration::from_millis(20), "{wait:?}");
    assert_eq!(budget.refused, 1);
    std::thread::sleep(Duration::from_millis(25));
    assert!(budget.take().is_ok(), "a token came back after 1/50 s");
    assert_eq!(budget.refused, 0);
    assert_eq!(retry_after_secs(wait), 1);
    let mut unlimited = FrameBudget::new(&limits(0, 1));
    assert!((0..1000).all(|_| unlimited.take().is_ok()), "0: no limit");
}
