//! One fault of the schedule: injected, waited out, and measured from the clients' side.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::client::{self, Shared, lock};
use crate::report::{Fault, FaultKind};
use crate::{Args, Deployment, everyone_has, last_seqs};

/// In a fault of the schedule: the instance holding more of the users' connections then.
///
/// So each kill and SIGTERM hits clients: after a kill the other instance often holds them all,
/// and the next kill takes that one.
pub const BUSIER: usize = usize::MAX;

/// The instance holding more of the users' connections.
fn busier(sh: &Shared) -> usize {
    let on = |i: usize| {
        sh.users
            .iter()
            .filter(|u| lock(&u.st).on == Some(i))
            .count()
    };
    usize::from(on(1) > on(0))
}

/// Injects one fault, waits until it is over, and measures what clients saw.
///
/// A fault of the [`BUSIER`] instance hits whichever instance is the busier one at that moment.
pub async fn inject(
    sh: &Shared,
    dep: &mut Deployment,
    kind: FaultKind,
    args: &Args,
) -> Result<Fault> {
    let kind = match kind {
        FaultKind::Kill(BUSIER) => FaultKind::Kill(busier(sh)),
        FaultKind::Terminate(BUSIER) => FaultKind::Terminate(busier(sh)),
        kind => kind,
    };
    let at = sh.now();
    let affected: Vec<usize> = match kind {
        FaultKind::Kill(i) | FaultKind::Terminate(i) => sh
            .users
            .iter()
            .filter(|u| lock(&u.st).on == Some(i))
            .map(|u| u.idx)
            .collect(),
        _ => sh.users.iter().map(|u| u.idx).collect(),
    };
    let mut fault = Fault::new(kind, at, affected);
    match kind {
        FaultKind::Kill(i) => {
            dep.instances[i].kill().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            dep.instances[i].start().await?;
        }
        FaultKind::Terminate(i) => {
            let took = dep.instances[i].terminate().await;
            fault.note(format!("exit took {} ms", took.as_millis()));
            dep.instances[i].start().await?;
        }
        FaultKind::RedisRestart => {
            dep.redis.kill().await;
            dep.redis.start().await?;
        }
        FaultKind::PgRestart => {
            dep.pg.stop(true).await?;
            tokio::time::sleep(Duration::from_secs(args.pg_down_secs)).await;
            dep.pg.start().await?;
        }
        FaultKind::RedisOutage => {
            dep.redis.kill().await;
            let outage = Duration::from_secs(args.outage_secs);
            // Fresh sockets opened during the outage, on both instances, at fixed times (a
            // probe that hangs does not stretch the outage).
            let probes = 4u32;
            let mut opened = Vec::new();
            for p in 0..probes {
                let user = sh.users[p as usize % sh.users.len()].clone();
                let base = sh.bases[p as usize % 2].clone();
                let wait = outage * (p + 1) / (probes + 1);
                opened.push(tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    client::open(&base, &user).await.map(|(_ws, took)| took)
                }));
            }
            tokio::time::sleep(outage).await;
            dep.redis.start().await?;
            fault.ended = sh.now();
            for probe in opened {
                match probe.await {
                    Ok(Ok(took)) => fault.probe_opened(took),
                    Ok(Err(e)) => fault.probe_failed(e),
                    Err(e) => fault.probe_failed(e.to_string()),
                }
            }
        }
    }
    if kind != FaultKind::RedisOutage {
        fault.ended = sh.now();
    }
    if matches!(kind, FaultKind::RedisOutage | FaultKind::RedisRestart) {
        // How soon every socket has every message stored before Redis came back.
        let lasts = last_seqs(&dep.pg).await?;
        let until = Instant::now() + Duration::from_secs(10);
        while !everyone_has(sh, &lasts) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if everyone_has(sh, &lasts) {
            fault.converged = Some(sh.now() - fault.ended);
        }
    }
    // Acknowledged again: wait until every affected sender has an ack after the fault's end
    // (at most 15 s), then measure.
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until && !fault.all_acked_again(sh) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fault.measure(sh);
    Ok(fault)
}
