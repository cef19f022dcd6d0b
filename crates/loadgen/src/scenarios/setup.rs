//! The users and groups of a run, created over REST or found from an earlier run.
//!
//! Names derive from `--prefix` and the scenario's tag, so a second run with the same prefix
//! reuses the first one's accounts and memberships instead of creating them again.

use std::time::Instant;

use anyhow::Result;
use futures_util::StreamExt;

use super::Common;
use crate::api::Api;
use crate::fleet::Target;
use crate::wire::Protocol;
use crate::worker::SocketPlan;

/// Users and groups of a run: `groups` groups of `members` users each.
pub(super) struct Groups {
    /// Access token per user, group by group.
    pub(super) tokens: Vec<String>,
    /// (chat id (0 on door 002), name) per group.
    pub(super) groups: Vec<(i64, String)>,
    /// Users per group.
    pub(super) members: usize,
}

/// Creates (or finds) `groups` public groups of `members` users named after `tag`, every user
/// a member. Native runs set up through the native API, door 002 runs through door 002's REST.
pub(super) async fn setup_groups(
    api: &Api,
    common: &Common,
    tag: &str,
    groups: usize,
    members: usize,
) -> Result<Groups> {
    let started = Instant::now();
    let names: Vec<String> = (0..groups * members)
        .map(|i| format!("{}{tag}{i}", common.prefix))
        .collect();
    let tokens = api.tokens(&names, common.setup_concurrency).await?;
    let protocol = common.protocol;
    let conc = common.setup_concurrency;
    let made: Vec<Result<(i64, String)>> = futures_util::stream::iter(0..groups)
        .map(|g| {
            let members_tokens = &tokens[g * members..(g + 1) * members];
            let name = format!("{}-{tag}{members}-{g}", common.prefix);
            async move {
                let owner = &members_tokens[0];
                let id = match protocol {
                    Protocol::Native => {
                        let id = api.ensure_group(owner, &name).await?;
                        if api.member_count(owner, id).await? < members {
                            join_all(members_tokens, conc, |t| api.join(t, id)).await?;
                        }
                        id
                    }
                    Protocol::Door002 => {
                        api.create_group_002(owner, &name).await?;
                        join_all(members_tokens, conc, |t| api.join_group_002(t, &name)).await?;
                        0
                    }
                };
                Ok((id, name))
            }
        })
        .buffered(4)
        .collect()
        .await;
    let groups = made.into_iter().collect::<Result<Vec<_>>>()?;
    eprintln!(
        "setup: {} groups of {members} ready in {:.1} s",
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Groups {
        tokens,
        groups,
        members,
    })
}

async fn join_all<'a, F, Fut>(tokens: &'a [String], conc: usize, join: F) -> Result<()>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    futures_util::stream::iter(tokens.iter().skip(1))
        .map(|t| join(t))
        .buffer_unordered(conc.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

impl Groups {
    /// One socket per user; the first `senders` of each group send.
    pub(super) fn sockets(&self, senders: usize) -> Vec<SocketPlan> {
        let mut out = Vec::new();
        for (g, (chat_id, name)) in self.groups.iter().enumerate() {
            for m in 0..self.members {
                let i = g * self.members + m;
                out.push(SocketPlan {
                    id: i as u32,
                    token: self.tokens[i].clone(),
                    chat_id: *chat_id,
                    group_name: name.clone(),
                    sender: m < senders,
                });
            }
        }
        out
    }
}

/// The users of the idle and reconnect scenarios (shared, tag `c`): `sockets` users in groups
/// of `group_size`, one receiving socket each.
pub(super) async fn connected_users(
    common: &Common,
    protocol: Protocol,
    sockets: usize,
    group_size: usize,
) -> Result<(Target, Api, Groups, Vec<SocketPlan>)> {
    let target = Target::resolve(&common.url, protocol, common.source_ips).await?;
    let api = Api::new(&target.http)?;
    let group_size = group_size.clamp(1, sockets.max(1));
    let groups = setup_groups(&api, common, "c", sockets.div_ceil(group_size), group_size).await?;
    let mut plan = groups.sockets(0);
    plan.truncate(sockets);
    Ok((target, api, groups, plan))
}

pub(super) async fn last_seqs(api: &Api, setup: &Groups) -> Result<Vec<i64>> {
    futures_util::stream::iter(setup.groups.iter().enumerate())
        .map(|(g, (id, _))| api.last_seq(&setup.tokens[g * setup.members], *id))
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
