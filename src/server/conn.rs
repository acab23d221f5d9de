//! Connection slots: how many connections are open, what each one is doing,
//! and which to close when a new client needs room.
//!
//! Every accepted connection holds a [`Slot`] until its task ends. A slot
//! says which phase its connection is in — waiting for a request (idle),
//! receiving a request head, or sending a response (busy) — and since when.
//! That is what lets the accept loop shed load the way nginx does: at
//! `max_connections`, the connection that has waited longest without sending
//! anything useful (an idle keep-alive connection, a silent new one, or a
//! request head dribbling in for over a second) is asked to close, so a new
//! client is served instead of queued behind sockets that do nothing. A busy
//! connection is never shed; its own send deadline bounds it. The same rule,
//! applied per client address (IPv6 by /64, since one host gets a whole /64),
//! stops one address from taking the limit.
//!
//! This module decides and counts; it never touches a socket. The connection
//! tasks (`http1`, `fallback`) report their phases and obey [`Slot::evicted`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

/// A request head in progress for this long counts as slow: at the limit it
/// may be shed like an idle connection. A real client sends its head in one
/// packet; only a slow link or a slowloris takes a whole second.
pub const SLOW_HEAD: Duration = Duration::from_secs(1);

/// Where a connection comes from, as far as per-address limits go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4([u8; 4]),
    /// The /64 prefix: the smallest block a host is normally given.
    V6Prefix([u8; 8]),
}

impl AddressKey {
    /// The key `ip` counts under: the IPv4 address itself, the embedded address for
    /// an IPv4-mapped IPv6 one, else the IPv6 address's /64 prefix.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    AddressKey::V6Prefix([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a request: a new connection that has sent nothing yet, or
    /// a keep-alive connection between requests.
    Idle,
    /// Some of a request head has arrived, not all of it.
    Head,
    /// A request is being answered.
    Busy,
}

impl Phase {
    fn bits(self) -> u64 {
        match self {
            Phase::Idle => 0,
            Phase::Head => 1,
            Phase::Busy => 2,
        }
    }

    fn from_bits(bits: u64) -> Self {
        match bits {
            0 => Phase::Idle,
            1 => Phase::Head,
            _ => Phase::Busy,
        }
    }
}

/// Bits of the packed state word that hold the time; the top two hold the phase.
const TIME_BITS: u32 = 62;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// One open connection's place in the registry.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    key: AddressKey,
    epoch: Instant,
    /// Phase and the millisecond (since `epoch`) it began, in one word so a
    /// scan never sees one without the other.
    state: AtomicU64,
    evicted: AtomicBool,
    wake: Notify,
}

impl Slot {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) & TIME_MASK
    }

    /// Records that the connection entered `phase` now.
    pub fn enter(&self, phase: Phase) {
        let word = (phase.bits() << TIME_BITS) | self.now_ms();
        self.state.store(word, Ordering::Relaxed);
    }

    /// The current phase and when it began, in milliseconds since the registry's
    /// epoch (read together, so never torn).
    pub fn phase(&self) -> (Phase, u64) {
        let word = self.state.load(Ordering::Relaxed);
        (Phase::from_bits(word >> TIME_BITS), word & TIME_MASK)
    }

    /// Whether the accept loop has asked this connection to close.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Completes once the accept loop asks this connection to close (at once
    /// if it already has).
    pub async fn evicted(&self) {
        loop {
            let notified = self.wake.notified();
            if self.is_evicted() {
                return;
            }
            notified.await;
        }
    }

    /// Sheddable at `now_ms`, and how long it has been in its phase.
    fn shed_age(&self, now_ms: u64) -> Option<u64> {
        let (phase, since) = self.phase();
        let age = now_ms.saturating_sub(since);
        match phase {
            Phase::Idle => Some(age),
            Phase::Head if age >= SLOW_HEAD.as_millis() as u64 => Some(age),
            _ => None,
        }
    }
}

/// The limits the registry enforces.
#[derive(Debug, Clone, Copy)]
pub struct SlotLimits {
    /// Connections open at once, across all addresses; 0 is raised to 1.
    pub max_connections: usize,
    /// Connections open at once from one [`AddressKey`]; 0 is raised to 1.
    pub max_per_address: usize,
}

/// Counters and gauges for `/healthz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// Connections holding a slot now.
    pub open: usize,
    /// The configured limit on open connections.
    pub max: usize,
    /// The configured limit on open connections per address.
    pub max_per_address: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Idle or slow connections closed to make room for new clients.
    pub shed: u64,
    /// Connections refused: their address already had its share, or every
    /// slot stayed busy for the whole header timeout after the accept.
    pub refused: u64,
    /// Connections closed because a deadline passed (request head, idle
    /// keep-alive, or sending a response too slowly).
    pub timed_out: u64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    slots: HashMap<u64, Arc<Slot>>,
    per_address: HashMap<AddressKey, usize>,
    /// Connection tasks still running, shed ones included.
    tasks: usize,
}

/// Every open connection, and the rules for admitting new ones.
#[derive(Debug)]
pub struct Registry {
    epoch: Instant,
    limits: SlotLimits,
    inner: Mutex<Inner>,
    /// Signalled whenever a slot is given back or a task ends.
    freed: Notify,
    accepted: AtomicU64,
    shed: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds its share of slots and none of them can be shed.
    PerAddress,
    /// Every slot is busy (the accept loop normally waits instead).
    Full,
}

impl Registry {
    /// An empty registry enforcing `limits` (each raised to at least 1), timing
    /// phases from now.
    pub fn new(limits: SlotLimits) -> Self {
        Self::with_epoch(limits, Instant::now())
    }

    /// Times are kept as milliseconds since `epoch`.
    fn with_epoch(limits: SlotLimits, epoch: Instant) -> Self {
        Self {
            epoch,
            limits: SlotLimits {
                max_connections: limits.max_connections.max(1),
                max_per_address: limits.max_per_address.max(1),
            },
            inner: Mutex::new(Inner::default()),
            freed: Notify::new(),
            accepted: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if something ever did, the
        // counts are still the best information there is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) & TIME_MASK
    }

    /// Whether a new connection could be admitted now: a free slot, or one
    /// that can be shed.
    pub fn has_room(&self) -> bool {
        let inner = self.lock();
        inner.slots.len() < self.limits.max_connections
            || oldest_sheddable(&inner, self.now_ms(), |_| true).is_some()
    }

    /// Waits until [`Registry::has_room`], checking again whenever a slot is
    /// freed and at least every `recheck` (a busy connection turning idle does
    /// not signal).
    pub async fn room(&self, recheck: Duration) {
        loop {
            let freed = self.freed.notified();
            if self.has_room() {
                return;
            }
            let _ = tokio::time::timeout(recheck, freed).await;
        }
    }

    /// Admits a connection from `ip`, shedding another where the limits
    /// require it. The returned guard gives the slot back when dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<SlotGuard, Refusal> {
        let key = AddressKey::of(ip);
        let now = self.now_ms();
        let mut inner = self.lock();
        if inner.per_address.get(&key).copied().unwrap_or(0) >= self.limits.max_per_address {
            match oldest_sheddable(&inner, now, |s| s.key == key) {
                Some(victim) => self.shed(&mut inner, victim),
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::PerAddress);
                }
            }
        }
        if inner.slots.len() >= self.limits.max_connections {
            match oldest_sheddable(&inner, now, |_| true) {
                Some(victim) => self.shed(&mut inner, victim),
                None => return Err(Refusal::Full),
            }
        }
        inner.next_id += 1;
        let slot = Arc::new(Slot {
            id: inner.next_id,
            key,
            epoch: self.epoch,
            state: AtomicU64::new((Phase::Idle.bits() << TIME_BITS) | now),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        inner.slots.insert(slot.id, slot.clone());
        *inner.per_address.entry(key).or_insert(0) += 1;
        inner.tasks += 1;
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(SlotGuard {
            slot,
            registry: self.clone(),
        })
    }

    /// Takes `id`'s slot away from it now (its connection closes moments
    /// later) and tells the connection.
    fn shed(&self, inner: &mut Inner, id: u64) {
        if let Some(slot) = release(inner, id) {
            slot.evicted.store(true, Ordering::Release);
            slot.wake.notify_one();
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection was turned away after waiting in vain for a slot.
    pub fn record_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed because one of its deadlines passed.
    pub fn record_timeout(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the counters and gauges, for `/healthz`.
    pub fn stats(&self) -> ConnectionStats {
        let open = self.lock().slots.len();
        ConnectionStats {
            open,
            max: self.limits.max_connections,
            max_per_address: self.limits.max_per_address,
            accepted: self.accepted.load(Ordering::Relaxed),
            shed: self.shed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    /// Connection tasks still running (shed ones until they have closed).
    pub fn tasks(&self) -> usize {
        self.lock().tasks
    }

    /// Waits until every connection task has ended.
    pub async fn drained(&self) {
        loop {
            let freed = self.freed.notified();
            if self.tasks() == 0 {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), freed).await;
        }
    }
}

fn release(inner: &mut Inner, id: u64) -> Option<Arc<Slot>> {
    let slot = inner.slots.remove(&id)?;
    if let Some(n) = inner.per_address.get_mut(&slot.key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            inner.per_address.remove(&slot.key);
        }
    }
    Some(slot)
}

/// The sheddable slot (among those `eligible`) that has waited longest.
fn oldest_sheddable(inner: &Inner, now_ms: u64, eligible: impl Fn(&Slot) -> bool) -> Option<u64> {
    inner
        .slots
        .values()
        .filter(|s| eligible(s))
        .filter_map(|s| s.shed_age(now_ms).map(|age| (age, s.id)))
        .max_by_key(|&(age, id)| (age, std::cmp::Reverse(id)))
        .map(|(_, id)| id)
}

/// A connection's hold on its slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct SlotGuard {
    slot: Arc<Slot>,
    registry: Arc<Registry>,
}

impl SlotGuard {
    /// The slot this guard holds, to record phases and watch for eviction.
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// The registry the slot belongs to, to record timeouts and refusals.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        {
            let mut inner = self.registry.lock();
            // Already gone if the slot was shed.
            release(&mut inner, self.slot.id);
            inner.tasks = inner.tasks.saturating_sub(1);
        }
        self.registry.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    fn registry(max: usize, per_address: usize) -> Arc<Registry> {
        // An epoch an hour back, so phases can be dated into the past.
        let epoch = Instant::now()
            .checked_sub(Duration::from_secs(3600))
            .expect("the clock is past an hour");
        Arc::new(Registry::with_epoch(
            SlotLimits {
                max_connections: max,
                max_per_address: per_address,
            },
            epoch,
        ))
    }

    /// Moves a slot's phase start into the past.
    fn age(slot: &Slot, phase: Phase, ms: u64) {
        let since = slot.now_ms().saturating_sub(ms);
        slot.state
            .store((phase.bits() << TIME_BITS) | since, Ordering::Relaxed);
    }

    #[test]
    fn ipv6_addresses_share_a_key_per_64_and_mapped_v4_is_v4() {
        let a: Ipv6Addr = "2001:db8:1:2::1".parse().expect("v6");
        let b: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().expect("v6");
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().expect("v6");
        assert_eq!(AddressKey::of(a.into()), AddressKey::of(b.into()));
        assert_ne!(AddressKey::of(a.into()), AddressKey::of(c.into()));
        let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().expect("v6");
        assert_eq!(
            AddressKey::of(mapped.into()),
            AddressKey::of(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
    }

    #[test]
    fn at_the_limit_the_longest_idle_connection_is_shed() {
        let r = registry(3, 10);
        let a = r.admit(ip(1)).expect("a");
        let b = r.admit(ip(2)).expect("b");
        let c = r.admit(ip(3)).expect("c");
        age(a.slot(), Phase::Busy, 50_000);
        age(b.slot(), Phase::Idle, 5_000);
        age(c.slot(), Phase::Idle, 20_000);
        let d = r.admit(ip(4)).expect("room is made");
        assert!(c.slot().is_evicted(), "the longest idle goes");
        assert!(!a.slot().is_evicted() && !b.slot().is_evicted());
        assert_eq!(r.stats().open, 3);
        assert_eq!(r.stats().shed, 1);
        drop(c);
        assert_eq!(r.stats().open, 3, "a shed slot is not given back twice");
        assert_eq!(r.tasks(), 3);
        drop(d);
        assert_eq!(r.stats().open, 2);
    }

    #[test]
    fn busy_connections_and_fresh_heads_are_never_shed() {
        let r = registry(2, 10);
        let a = r.admit(ip(1)).expect("a");
        let b = r.admit(ip(2)).expect("b");
        a.slot().enter(Phase::Busy);
        b.slot().enter(Phase::Head);
        assert_eq!(r.admit(ip(3)).err(), Some(Refusal::Full));
        assert!(!r.has_room());
        age(b.slot(), Phase::Head, 1_500);
        assert!(r.has_room(), "a head dribbling in for 1.5 s may be shed");
        let _c = r.admit(ip(3)).expect("the slow head made room");
        assert!(b.slot().is_evicted());
        assert!(!a.slot().is_evicted());
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let r = registry(100, 2);
        let a = r.admit(ip(1)).expect("a");
        let b = r.admit(ip(1)).expect("b");
        a.slot().enter(Phase::Busy);
        b.slot().enter(Phase::Busy);
        assert_eq!(r.admit(ip(1)).err(), Some(Refusal::PerAddress));
        assert_eq!(r.stats().refused, 1);
        let _other = r.admit(ip(2)).expect("another address is not limited");
        age(b.slot(), Phase::Idle, 10);
        let _c = r.admit(ip(1)).expect("its own idle connection makes room");
        assert!(b.slot().is_evicted());
        drop(a);
        let _d = r.admit(ip(1)).expect("a slot given back is free again");
    }

    #[tokio::test]
    async fn eviction_wakes_the_connection_and_drain_waits_for_every_task() {
        let r = registry(1, 1);
        let a = r.admit(ip(1)).expect("a");
        let slot = a.slot().clone();
        let waiter = tokio::spawn(async move {
            slot.evicted().await;
            drop(a);
        });
        let b = r.admit(ip(1)).expect("b sheds a");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), r.drained())
            .await
            .expect("drained");
    }
}
