//! The scheduling loop on a stopped clock: tokio's time is paused and the
//! scheduler reads the time of day from a [`TokioClock`], so days of schedules
//! run in milliseconds and every call the loop makes to the store is logged
//! with the exact time it was made.

use super::*;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

use tempfile::TempDir;
use tokio::sync::{oneshot, watch};

use crate::article::{Article, ArticleFilter, RawArticle, ValidationContext};
use crate::store::{StoredArticle, Upserted};

/// A UTC time from RFC 3339.
fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// What the scheduler asked of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Open,
    Revision,
    ChangedSince(i64),
    /// The articles of the feed (by name) whose filter was asked for.
    Newest(String),
}

/// The store's side of a test: what it answers, and every call made of it.
#[derive(Default)]
struct World {
    calls: Mutex<Vec<(DateTime<Utc>, Call)>>,
    revision: AtomicI64,
    /// Every `revision()` finds a new write that touches every feed, as a
    /// busy newsroom's store would: each refresh rebuilds every feed due.
    busy: bool,
    /// Every write so far, for `changed_since`.
    changed: Mutex<Vec<StoredArticle>>,
    /// Every query fails.
    down: AtomicBool,
    /// Opens to refuse before one succeeds.
    refuse_opens: AtomicU32,
    /// How long `newest` takes (paused time: it costs the test nothing).
    newest_takes: Duration,
    /// Sends write notifications, for a store that has them.
    notify: Option<watch::Sender<u64>>,
    /// A published article that every test feed selects.
    article: Option<Article>,
}

impl World {
    fn log(&self, clock: &TokioClock, call: Call) {
        self.calls.lock().expect("calls").push((clock.now(), call));
    }

    /// The times of the calls `which` picks, in order.
    fn times(&self, which: impl Fn(&Call) -> bool) -> Vec<DateTime<Utc>> {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(t, _)| *t)
            .collect()
    }

    fn revisions(&self) -> Vec<DateTime<Utc>> {
        self.times(|c| *c == Call::Revision)
    }

    fn opens(&self) -> Vec<DateTime<Utc>> {
        self.times(|c| *c == Call::Open)
    }

    fn builds_of(&self, feed: &str) -> Vec<DateTime<Utc>> {
        self.times(|c| *c == Call::Newest(feed.into()))
    }

    /// [`World::builds_of`] from `from` to `to`, both included.
    fn builds_between(&self, feed: &str, from: &str, to: &str) -> Vec<DateTime<Utc>> {
        let window = at(from)..=at(to);
        self.builds_of(feed)
            .into_iter()
            .filter(|t| window.contains(t))
            .collect()
    }

    /// An article write: the next revision, touching every feed.
    fn write(&self) {
        let rev = Revision(self.revision.fetch_add(1, Ordering::SeqCst) + 1);
        let article = self.article.clone().expect("article");
        self.changed.lock().expect("changed").push(StoredArticle {
            article,
            revision: rev,
            withdrawn_at: None,
        });
    }

    fn fail(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt {
                id: "test".into(),
                reason: "the store is down".into(),
            });
        }
        Ok(())
    }
}

struct FakeStore {
    world: Arc<World>,
    clock: TokioClock,
}

#[async_trait]
impl ArticleStore for FakeStore {
    async fn upsert(&self, _: &[Article]) -> Result<Vec<Upserted>, StoreError> {
        unreachable!("the scheduler never writes")
    }

    async fn get(&self, _: &ArticleId) -> Result<Option<StoredArticle>, StoreError> {
        unreachable!("the scheduler reads feeds, not articles")
    }

    async fn source_states(&self) -> Result<Vec<(String, crate::store::SourceState)>, StoreError> {
        unreachable!("the scheduler never reads the sources' state")
    }

    async fn save_source_state(
        &self,
        _: &str,
        _: &crate::store::SourceState,
    ) -> Result<(), StoreError> {
        unreachable!("the scheduler never writes the sources' state")
    }

    async fn newest(
        &self,
        filter: &ArticleFilter,
        _limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        // Each test feed selects the tag of its own name.
        let feed = filter.tags.first().cloned().unwrap_or_default();
        self.world.log(&self.clock, Call::Newest(feed));
        tokio::time::sleep(self.world.newest_takes).await;
        self.world.fail()?;
        Ok(Vec::new())
    }

    async fn withdrawn(
        &self,
        _filter: &ArticleFilter,
        _limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.world.fail()?;
        Ok(Vec::new())
    }

    async fn walk(
        &self,
        _filter: &ArticleFilter,
        _walk: &crate::store::Walk,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.world.fail()?;
        Ok(Vec::new())
    }

    async fn walk_keys(
        &self,
        _filter: &ArticleFilter,
        _walk: &crate::store::Walk,
    ) -> Result<Vec<crate::store::ArticleKey>, StoreError> {
        self.world.fail()?;
        Ok(Vec::new())
    }

    async fn archive_pages(
        &self,
        _feed: &str,
        _scope: &str,
        _pages: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<crate::store::ArchivePage>, StoreError> {
        self.world.fail()?;
        Ok(Vec::new())
    }

    async fn archive_page_count(&self, _feed: &str, _scope: &str) -> Result<u32, StoreError> {
        self.world.fail()?;
        Ok(0)
    }

    async fn seal_archive_pages(
        &self,
        _feed: &str,
        _scope: &str,
        _pages: &[crate::store::ArchivePage],
    ) -> Result<u32, StoreError> {
        self.world.fail()?;
        Ok(0)
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        self.world.log(&self.clock, Call::Revision);
        self.world.fail()?;
        if self.world.busy {
            self.world.write();
        }
        Ok(Revision(self.world.revision.load(Ordering::SeqCst)))
    }

    async fn changed_since(
        &self,
        since: Revision,
        _limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.world.log(&self.clock, Call::ChangedSince(since.0));
        self.world.fail()?;
        Ok(self
            .world
            .changed
            .lock()
            .expect("changed")
            .iter()
            .filter(|c| c.revision > since)
            .cloned()
            .collect())
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        self.world.notify.as_ref().map(watch::Sender::subscribe)
    }
}

struct FakeOpener {
    world: Arc<World>,
    clock: TokioClock,
}

#[async_trait]
impl StoreOpener for FakeOpener {
    async fn open(&self, _: &Config) -> Result<Arc<dyn ArticleStore>, OpenError> {
        self.world.log(&self.clock, Call::Open);
        let refused =
            self.world
                .refuse_opens
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if refused.is_ok() {
            return Err("test: the store is not there yet".into());
        }
        Ok(Arc::new(FakeStore {
            world: self.world.clone(),
            clock: self.clock,
        }))
    }
}

/// What a test sets up: the site's schedule section, and feeds by name with
/// their own `refresh` line if any.
struct Setup {
    schedule: &'static str,
    feeds: &'static [(&'static str, Option<&'static str>)],
    notifies: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            // Once a year, at a time no test reaches: nothing fires unasked.
            schedule: "refresh = \"0 3 1 1 *\"",
            feeds: &[("news", None)],
            notifies: false,
        }
    }
}

/// A scheduler running on paused time from `start`, with a [`FakeStore`].
struct Running {
    world: Arc<World>,
    clock: TokioClock,
    publisher: Arc<Publisher>,
    control: mpsc::Sender<Control>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: TempDir,
}

/// A configuration in Europe/Dublin, written to `dir` and loaded as the
/// service would.
fn config(dir: &Path, setup: &Setup) -> Config {
    let feeds_dir = dir.join("feeds");
    std::fs::create_dir_all(&feeds_dir).expect("feeds dir");
    let main = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://127.0.0.1:8080\"\n\n\
         [site]\ntitle = \"Test News\"\ntimezone = \"Europe/Dublin\"\n\n\
         [store]\nurl = \"sqlite::memory:\"\n\n\
         [output]\ndir = \"{}\"\n\n\
         [schedule]\n{}\n\n\
         [feeds]\ndir = \"{}\"\n",
        dir.join("published").display(),
        setup.schedule,
        feeds_dir.display(),
    );
    std::fs::write(dir.join("feedsmith.toml"), main).expect("main config");
    for (name, refresh) in setup.feeds {
        let mut text = format!("title = \"{name}\"\ntags = [\"{name}\"]\n");
        if let Some(refresh) = refresh {
            text.push_str(&format!("refresh = \"{refresh}\"\n"));
        }
        std::fs::write(feeds_dir.join(format!("{name}.toml")), text).expect("feed config");
    }
    Config::load(&dir.join("feedsmith.toml")).expect("test config loads")
}

/// A published article tagged with every feed's name, so every feed lists it.
fn article_for_every_feed(setup: &Setup) -> Article {
    let tags: Vec<&str> = setup.feeds.iter().map(|(name, _)| *name).collect();
    let raw: RawArticle = serde_json::from_value(serde_json::json!({
        "id": "story",
        "url": "https://news.example.com/story",
        "headline": "Story",
        "tags": tags,
        "published_at": "2026-01-01T09:00:00Z",
    }))
    .expect("article shape");
    raw.validate(ValidationContext {
        timezone: chrono_tz::UTC,
    })
    .expect("valid article")
    .article
}

impl Running {
    /// Starts the scheduler at `start`; tokio's time must be paused.
    async fn start(start: &str, setup: Setup, world: impl FnOnce(&mut World)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Arc::new(config(dir.path(), &setup));
        let mut w = World {
            article: Some(article_for_every_feed(&setup)),
            notify: setup.notifies.then(|| watch::Sender::new(0)),
            ..World::default()
        };
        world(&mut w);
        let world = Arc::new(w);
        let clock = TokioClock::starting_at(at(start));
        let publisher = Arc::new(Publisher::default());
        let pipeline = Arc::new(Pipeline::start(
            &config.output_dir,
            publisher.clone(),
            Box::new(|_| {}),
        ));
        // As the service starts: what the (empty) output folder holds first.
        publisher.publish(crate::refresh::initial_set(&config, &pipeline).await);
        let scheduler = Scheduler::new(
            config,
            Arc::new(FakeOpener {
                world: world.clone(),
                clock,
            }),
            publisher.clone(),
            pipeline,
            Arc::new(Health::new(1)),
            Arc::new(clock),
        );
        let (control, control_rx) = mpsc::channel(4);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(scheduler.run(control_rx, async {
            let _ = stopped.await;
        }));
        Self {
            world,
            clock,
            publisher,
            control,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    /// Lets the scheduler run until the clock reads `t`.
    async fn until(&self, t: &str) {
        let wait = (at(t) - self.clock.now())
            .to_std()
            .expect("a time still to come");
        tokio::time::sleep(wait).await;
    }

    /// What is served now.
    fn served(&self) -> Arc<PublishedSet> {
        self.publisher.snapshot()
    }

    /// Hands the scheduler a reload's outcome, as the reloader does.
    async fn reload(&self, outcome: Control) {
        self.control.send(outcome).await.expect("scheduler running");
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("scheduler task");
        }
    }
}

/// Times as `DD HH:MM:SS` (UTC) for short, readable assertions.
fn hms(times: &[DateTime<Utc>]) -> Vec<String> {
    times
        .iter()
        .map(|t| t.format("%d %H:%M:%S").to_string())
        .collect()
}

/// Runs a daily 01:30 and an hourly :30 feed (site time) from `start` to
/// `end` on paused time, and returns what was built.
async fn daily_and_hourly(start: &str, end: &str) -> Arc<World> {
    let running = Running::start(
        start,
        Setup {
            feeds: &[
                ("daily", Some("30 1 * * *")),
                ("hourly", Some("30 * * * *")),
            ],
            ..Setup::default()
        },
        |w| w.busy = true,
    )
    .await;
    running.until(end).await;
    let world = running.world.clone();
    running.stop().await;
    world
}

// Europe/Dublin in 2026: 29 March 01:00 GMT jumps to 02:00 IST; 25 October
// 02:00 IST falls back to 01:00 GMT.

#[tokio::test(start_paused = true)]
async fn schedules_fire_at_the_site_s_wall_clock_times_across_the_spring_gap() {
    let world = daily_and_hourly("2026-03-28T12:00:00Z", "2026-03-30T03:00:00Z").await;
    assert_eq!(
        hms(&world.builds_of("daily")),
        [
            "28 12:00:00", // start-up
            "29 01:00:00", // 01:30 does not exist: once, when the gap ends (02:00 IST)
            "30 00:30:00", // 01:30 IST
        ]
    );
    let hourly = hms(&world.builds_of("hourly"));
    assert_eq!(hourly[..3], ["28 12:00:00", "28 12:30:00", "28 13:30:00"]);
    // Start-up, one run in each of the 39 hours, and one when the gap ends.
    assert_eq!(hourly.len(), 1 + 39 + 1);
    assert_eq!(
        hms(&world.builds_between("hourly", "2026-03-28T23:00:00Z", "2026-03-29T02:59:59Z")),
        [
            "28 23:30:00",
            "29 00:30:00", // 00:30 GMT
            "29 01:00:00", // 01:30 GMT does not exist: at the gap's end
            "29 01:30:00", // 02:30 IST
            "29 02:30:00",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn schedules_fire_at_the_site_s_wall_clock_times_across_the_repeated_autumn_hour() {
    let world = daily_and_hourly("2026-10-24T12:00:00Z", "2026-10-26T03:00:00Z").await;
    assert_eq!(
        hms(&world.builds_of("daily")),
        [
            "24 12:00:00", // start-up
            "25 00:30:00", // 01:30 IST; not again at 01:30 GMT
            "26 01:30:00", // 01:30 GMT
        ]
    );
    // Start-up and one run in each of the 39 hours, the repeated one too.
    assert_eq!(world.builds_of("hourly").len(), 1 + 39);
    assert_eq!(
        hms(&world.builds_between("hourly", "2026-10-24T23:00:00Z", "2026-10-25T02:59:59Z")),
        [
            "24 23:30:00",
            "25 00:30:00", // 01:30 IST
            "25 01:30:00", // 01:30 GMT: an hourly schedule keeps its rhythm
            "25 02:30:00",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn store_faults_back_off_doubling_to_a_minute_and_start_again_after_a_success() {
    let running = Running::start(
        "2026-06-01T12:00:00Z",
        Setup {
            schedule: "refresh = \"*/10 * * * *\"",
            ..Setup::default()
        },
        |w| w.refuse_opens = AtomicU32::new(9),
    )
    .await;
    // The store cannot be opened nine times, then can; meanwhile the feed
    // answers 503.
    running.until("2026-06-01T12:04:00Z").await;
    assert!(running.served().pending().contains("news"));
    running.until("2026-06-01T12:05:00Z").await;
    assert!(running.served().feed("news").is_some());
    assert_eq!(
        hms(&running.world.opens()),
        [
            "01 12:00:00",
            "01 12:00:01", // +1 s
            "01 12:00:03", // +2 s
            "01 12:00:07", // +4 s
            "01 12:00:15", // +8 s
            "01 12:00:31", // +16 s
            "01 12:01:03", // +32 s
            "01 12:02:03", // +60 s, the most
            "01 12:03:03",
            "01 12:04:03", // opens
        ]
    );
    assert_eq!(hms(&running.world.builds_of("news")), ["01 12:04:03"]);

    // Opened, the store then fails its queries from just before the
    // 12:10 refresh until 12:10:20: the delays start again from a second.
    running.world.down.store(true, Ordering::SeqCst);
    running.until("2026-06-01T12:10:20Z").await;
    running.world.down.store(false, Ordering::SeqCst);
    running.until("2026-06-01T12:12:00Z").await;
    let world = running.world.clone();
    running.stop().await;
    assert_eq!(world.opens().len(), 10, "an open store is kept");
    assert_eq!(
        hms(&world.revisions()),
        [
            "01 12:04:03",
            "01 12:10:00", // the schedule; fails
            "01 12:10:01",
            "01 12:10:03",
            "01 12:10:07",
            "01 12:10:15",
            "01 12:10:31", // answers
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_watch_poll_keeps_its_rhythm_beside_the_schedule_and_builds_only_what_moved() {
    let running = Running::start(
        "2026-06-01T12:00:00Z",
        Setup {
            schedule: "refresh = \"*/5 * * * *\"\nwatch = \"10s\"",
            ..Setup::default()
        },
        |_| {},
    )
    .await;
    // A write between two polls is built at the next one, long before the
    // 12:05 schedule.
    running.until("2026-06-01T12:02:25Z").await;
    running.world.write();
    running.until("2026-06-01T12:05:35Z").await;
    let world = running.world.clone();
    running.stop().await;

    assert_eq!(
        hms(&world.builds_of("news")),
        ["01 12:00:00", "01 12:02:30"]
    );
    let polls = hms(&world.revisions());
    let mut expected = vec!["01 12:00:00".to_owned()]; // start-up
    for s in (10..=330).step_by(10) {
        let t = at("2026-06-01T12:00:00Z") + chrono::Duration::seconds(s);
        expected.push(t.format("%d %H:%M:%S").to_string());
        if s == 150 {
            // The poll saw the write; the refresh it starts reads the revision again.
            expected.push("01 12:02:30".into());
        }
        if s == 300 {
            // The schedule's own refresh, and the poll due at the same moment.
            expected.push("01 12:05:00".into());
        }
    }
    assert_eq!(polls, expected);
    assert_eq!(
        world.times(|c| matches!(c, Call::ChangedSince(_))).len(),
        1,
        "only the poll that saw the write asks what changed"
    );
}

#[tokio::test(start_paused = true)]
async fn write_notifications_coalesce_into_one_refresh_and_those_during_one_into_one_more() {
    let running = Running::start(
        "2026-06-01T12:00:00Z",
        Setup {
            notifies: true,
            ..Setup::default()
        },
        |w| w.newest_takes = Duration::from_secs(5),
    )
    .await;
    let notify = |n: u32| {
        let sender = running.world.notify.as_ref().expect("a notifying store");
        for _ in 0..n {
            sender.send_modify(|count| *count += 1);
        }
    };
    running.until("2026-06-01T12:01:00Z").await;
    running.world.write();
    notify(50);
    // A refresh runs from 12:02:00 to 12:02:05 (`newest` takes 5 s); the
    // notifications that arrive meanwhile make one more, when it ends.
    running.until("2026-06-01T12:02:00Z").await;
    running.world.write();
    notify(1);
    running.until("2026-06-01T12:02:02Z").await;
    running.world.write();
    notify(20);
    running.until("2026-06-01T12:03:00Z").await;
    let world = running.world.clone();
    running.stop().await;

    assert_eq!(
        hms(&world.revisions()),
        ["01 12:00:00", "01 12:01:00", "01 12:02:00", "01 12:02:05"]
    );
    assert_eq!(
        hms(&world.builds_of("news")),
        ["01 12:00:00", "01 12:01:00", "01 12:02:00", "01 12:02:05"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_rebuilds_every_feed_once_and_follows_the_new_schedules_from_then() {
    let running = Running::start(
        "2026-06-01T12:00:00Z",
        Setup {
            feeds: &[("news", None), ("old", None)],
            ..Setup::default()
        },
        |_| {},
    )
    .await;
    running.until("2026-06-01T12:10:00Z").await;
    running
        .reload(Control::Rejected(ConfigError::new(Vec::new())))
        .await;
    running.until("2026-06-01T12:20:00Z").await;
    // `news` now runs hourly; `old` is gone and `extra` is new.
    let next = config(
        &running.dir.path().join("next"),
        &Setup {
            feeds: &[("news", Some("0 * * * *")), ("extra", None)],
            ..Setup::default()
        },
    );
    running.reload(Control::Apply(Box::new(next))).await;
    running.until("2026-06-01T14:30:00Z").await;
    let served = running.served();
    let world = running.world.clone();
    running.stop().await;

    assert_eq!(
        hms(&world.revisions()),
        [
            "01 12:00:00", // start-up
            "01 12:20:00", // the reload: a refused one did nothing
            "01 13:00:00", // hourly from then
            "01 14:00:00",
        ]
    );
    assert_eq!(
        hms(&world.builds_of("news")),
        ["01 12:00:00", "01 12:20:00"]
    );
    assert_eq!(hms(&world.builds_of("extra")), ["01 12:20:00"]);
    assert_eq!(hms(&world.builds_of("old")), ["01 12:00:00"]);
    assert_eq!(
        served
            .feeds()
            .keys()
            .map(FeedName::as_str)
            .collect::<Vec<_>>(),
        ["extra", "news"]
    );
    assert!(served.is_gone("old") && served.pending().is_empty());
}
