//! Configs for the benchmarks: a realistic four-section derived config, and a hand-written
//! [`StorageAvailability`] with any number of sections (up to 10,000) for the scaling runs.
//!
//! Shared by every bench target; each target uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use storage_availability::schema::{CacheFile, Metadata, SCHEMA_VERSION, Timestamp};
use storage_availability::{
    AvailabilityCache, BlockingValidators, KeyContext, KeyError, Outcome, SectionKey, SectionSpec,
    StorageAvailability, StorageKind, UnknownKind, section_key,
};

/// What a validator does, shared by the clones of a config: sleep this long, count the call.
/// Not serialised, so not part of any key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Probe {
    sleep: Duration,
    calls: Arc<AtomicUsize>,
}

impl Probe {
    pub(crate) fn sleeping(sleep: Duration) -> Self {
        Probe {
            sleep,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn run(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.sleep.is_zero() {
            std::thread::sleep(self.sleep);
        }
    }
}

/// CSV files under a base directory.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Csv {
    base_dir: PathBuf,
    delimiter: char,
    max_file_mb: u32,
    #[serde(skip)]
    probe: Probe,
}

/// A vector store: provider, data directory, index options.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Vector {
    provider: String,
    data_dir: PathBuf,
    dimensions: u32,
    options: BTreeMap<String, String>,
    #[serde(skip)]
    probe: Probe,
}

/// A key-value store reached over the network.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Kv {
    endpoint: String,
    pool_size: u16,
    tls: bool,
    #[serde(skip)]
    probe: Probe,
}

/// JSON documents in a directory.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Json {
    dir: PathBuf,
    pretty: bool,
    #[serde(skip)]
    probe: Probe,
}

/// A realistic storage config: four sections (one of them optional) and a non-section field.
#[derive(Debug, Clone, Serialize, StorageAvailability)]
pub(crate) struct Realistic {
    #[storage(validate = check_csv)]
    csv: Csv,
    #[storage(validate = check_vector, timeout_ms = 2000)]
    vector: Option<Vector>,
    #[storage(validate = check_kv, name = "key_value", timeout_ms = 1500)]
    kv: Kv,
    #[storage(validate = check_json)]
    json: Json,
    app_name: String,
}

fn check_csv(cfg: &Csv) -> Outcome {
    cfg.probe.run();
    Outcome::ok()
}

fn check_vector(cfg: &Vector) -> Outcome {
    cfg.probe.run();
    if ["local", "chroma", "qdrant", "pgvector"].contains(&cfg.provider.as_str()) {
        Outcome::ok()
    } else {
        Outcome::ok().with_warning(format!("unknown vector provider `{}`", cfg.provider))
    }
}

fn check_kv(cfg: &Kv) -> Outcome {
    cfg.probe.run();
    Outcome::ok()
}

fn check_json(cfg: &Json) -> Outcome {
    cfg.probe.run();
    Outcome::ok()
}

impl Realistic {
    /// Every section configured and passing; each validator sleeps `sleep`. The four
    /// validators share one call counter.
    pub(crate) fn new(sleep: Duration) -> Self {
        let probe = Probe::sleeping(sleep);
        let mut options = BTreeMap::new();
        options.insert("metric".to_owned(), "cosine".to_owned());
        options.insert("index".to_owned(), "hnsw".to_owned());
        options.insert("ef_construction".to_owned(), "200".to_owned());
        Realistic {
            csv: Csv {
                base_dir: "/srv/app/data/csv".into(),
                delimiter: ',',
                max_file_mb: 512,
                probe: probe.clone(),
            },
            vector: Some(Vector {
                provider: "qdrant".into(),
                data_dir: "/srv/app/data/vector".into(),
                dimensions: 1536,
                options,
                probe: probe.clone(),
            }),
            kv: Kv {
                endpoint: "redis.internal.example:6379".into(),
                pool_size: 16,
                tls: true,
                probe: probe.clone(),
            },
            json: Json {
                dir: "/srv/app/data/json".into(),
                pretty: false,
                probe,
            },
            app_name: "bench".into(),
        }
    }

    /// Validator calls so far (all four sections).
    pub(crate) fn calls(&self) -> usize {
        self.csv.probe.calls()
    }

    /// The same config with the CSV directory changed: one section of four differs.
    pub(crate) fn with_csv_dir(&self, dir: &str) -> Self {
        let mut changed = self.clone();
        changed.csv.base_dir = dir.into();
        changed
    }

    /// The same config with an unknown vector provider: its validator passes with a warning.
    pub(crate) fn with_unknown_provider(&self) -> Self {
        let mut changed = self.clone();
        if let Some(vector) = &mut changed.vector {
            vector.provider = "faiss".into();
        }
        changed
    }
}

/// Section names `s0`, `s1`, ... `s9999`, made once and leaked (they live as long as the
/// process, as the derive's string literals do).
fn names() -> &'static [&'static str] {
    static NAMES: OnceLock<&'static [&'static str]> = OnceLock::new();
    NAMES.get_or_init(|| {
        let names: Vec<&'static str> = (0..MAX_SECTIONS)
            .map(|i| &*Box::leak(format!("s{i}").into_boxed_str()))
            .collect();
        Box::leak(names.into_boxed_slice())
    })
}

/// The most sections [`Section`] supports.
pub(crate) const MAX_SECTIONS: usize = 10_000;

/// Section `i` of a config with `N` sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Section<const N: usize>(u16);

const fn all_sections<const N: usize>() -> [Section<N>; N] {
    assert!(N <= MAX_SECTIONS);
    let mut all = [Section(0); N];
    let mut i = 0;
    while i < N {
        all[i] = Section(i as u16);
        i += 1;
    }
    all
}

impl<const N: usize> fmt::Display for Section<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<const N: usize> FromStr for Section<N> {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        Self::from_name(s).ok_or_else(|| UnknownKind::new(s, &names()[..N]))
    }
}

impl<const N: usize> StorageKind for Section<N> {
    const ALL: &'static [Self] = &all_sections::<N>();

    fn name(self) -> &'static str {
        names()[usize::from(self.0)]
    }

    fn from_name(name: &str) -> Option<Self> {
        let digits = name.strip_prefix('s')?;
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        let i: u16 = digits.parse().ok()?;
        (usize::from(i) < N).then_some(Section(i))
    }

    fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One section of a [`Many`] config: a directory, like the CSV section above.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Dir {
    path: String,
    writable: bool,
    max_file_mb: u32,
}

/// A hand-written config with `N` sections, each a [`Dir`].
#[derive(Debug, Clone)]
pub(crate) struct Many<const N: usize> {
    dirs: Arc<Vec<Dir>>,
    probe: Probe,
}

impl<const N: usize> Many<N> {
    pub(crate) fn new() -> Self {
        let dirs = (0..N)
            .map(|i| Dir {
                path: format!("/srv/app/data/section-{i}"),
                writable: true,
                max_file_mb: 512,
            })
            .collect();
        Many {
            dirs: Arc::new(dirs),
            probe: Probe::default(),
        }
    }

    pub(crate) fn calls(&self) -> usize {
        self.probe.calls()
    }
}

impl<const N: usize> BlockingValidators for Many<N> {}

impl<const N: usize> StorageAvailability for Many<N> {
    type Kind = Section<N>;
    type Context = ();

    fn config_type() -> &'static str {
        "benches::support::Many"
    }

    fn section_key_in(
        &self,
        kind: Section<N>,
        context: &KeyContext,
    ) -> Result<SectionKey, KeyError> {
        let spec = SectionSpec::new(Self::config_type(), kind.name());
        section_key(&spec, context, Some(&self.dirs[kind.index()]))
    }

    fn validate(&self, _kind: Section<N>) -> Outcome {
        self.probe.run();
        Outcome::ok()
    }

    fn is_configured(&self, _kind: Section<N>) -> bool {
        true
    }

    fn timeout(_kind: Section<N>) -> Option<Duration> {
        None
    }

    fn version(_kind: Section<N>) -> u32 {
        1
    }

    fn app_version() -> &'static str {
        "0.1.0"
    }
}

/// A temp directory with a config path in it; the cache file goes next to the config.
pub(crate) struct Workspace {
    _dir: tempfile::TempDir,
    /// The config path passed to `open`.
    pub(crate) config_path: PathBuf,
}

impl Workspace {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("storage.yaml");
        std::fs::write(&config_path, "# benchmark config\n").expect("write config");
        Workspace {
            _dir: dir,
            config_path,
        }
    }
}

/// A cache file is at most 1 MiB by default; 10,000 sections need more.
pub(crate) const LARGE_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Opens `config` for `config_path` with room for a large file.
pub(crate) fn open_large<C: BlockingValidators<Context = ()>>(
    config: C,
    config_path: &Path,
) -> AvailabilityCache<C> {
    AvailabilityCache::builder(config)
        .config_path(config_path)
        .max_file_bytes(LARGE_FILE_BYTES)
        .open()
        .expect("open")
}

/// The cache file the cache would write now (every section's record), for the save benches.
pub(crate) fn cache_file_of<C: StorageAvailability>(cache: &AvailabilityCache<C>) -> CacheFile {
    let sections = C::Kind::ALL
        .iter()
        .map(|&k| {
            (
                k.name().to_owned(),
                cache.record(k).expect("every section has a record"),
            )
        })
        .collect();
    CacheFile {
        schema_version: SCHEMA_VERSION.to_owned(),
        metadata: Metadata {
            generator: "storage-availability 0.1.0".to_owned(),
            generated_at: Timestamp(SystemTime::now()),
            config_type: C::config_type().to_owned(),
            config_path: cache.path().map(|p| p.display().to_string()),
            config_mtime: Some(1_732_450_000.5),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        },
        sections,
    }
}

/// SHA-256 of `prefix` then of `value` serialised straight into the hasher: what a key costs
/// without the intermediate `serde_json::Value` (fields in declaration order, so not
/// canonical in general; a floor, not a replacement).
fn direct_key<T: Serialize>(prefix: &str, value: &T) -> [u8; 32] {
    use sha2::Digest;
    struct HashWriter(sha2::Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = HashWriter(sha2::Sha256::new());
    hasher.0.update(prefix.as_bytes());
    serde_json::to_writer(&mut hasher, value).expect("serialise");
    hasher.0.finalize().into()
}

impl Realistic {
    /// The four keys' floor: each section hashed straight from serde, no `Value`, no sorting.
    pub(crate) fn direct_keys(&self) -> [[u8; 32]; 4] {
        [
            direct_key("storage-availability/1|csv|1|0.1.0|", &self.csv),
            direct_key("storage-availability/1|vector|1|0.1.0|", &self.vector),
            direct_key("storage-availability/1|key_value|1|0.1.0|", &self.kv),
            direct_key("storage-availability/1|json|1|0.1.0|", &self.json),
        ]
    }
}
