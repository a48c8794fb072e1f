//! Shared by the fuzz targets: an allocator that records the largest single allocation and the
//! peak of live bytes while one input runs, so that a target can fail an input that makes the
//! broker allocate far beyond what it received (libFuzzer's `-malloc_limit_mb` catches only
//! the absolute extremes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize, added: usize) {
    LARGEST.fetch_max(size, Relaxed);
    let live = LIVE.fetch_add(added, Relaxed) + added;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size(), layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size(), layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size, new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one input allocated: the largest single allocation and the peak of live bytes above
/// what was live when it started.
#[derive(Debug, Clone, Copy)]
pub struct Allocated {
    pub largest: usize,
    pub peak: usize,
}

/// Runs `f`, measuring its allocations.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Allocated) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    LARGEST.store(0, Relaxed);
    let out = f();
    let allocated = Allocated { largest: LARGEST.load(Relaxed), peak: PEAK.load(Relaxed).saturating_sub(base) };
    (out, allocated)
}

/// Runs `f` and panics (a crash for libFuzzer) when its peak of live bytes passes `bound`.
pub fn bounded<T>(what: &str, bound: usize, f: impl FnOnce() -> T) -> T {
    let (out, allocated) = measure(f);
    assert!(allocated.peak <= bound, "{what}: {allocated:?}, more than the bound of {bound} bytes");
    out
}

/// The most a request of `len` bytes may make the broker hold while it is checked and decoded:
/// every array element takes at least a byte on the wire (`server::wire`), and a decoded element
/// is a struct of at most a few hundred bytes.
pub fn request_bound(len: usize) -> usize {
    REQUEST_BYTES_PER_BYTE * len + (64 << 10)
}
pub const REQUEST_BYTES_PER_BYTE: usize = 512;

/// The decompression limit the batch targets use: the smallest `max_decompressed_batch_bytes`
/// the broker accepts.
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// The most checking a batch of `len` bytes may hold at once: the copy of the batches, the
/// decompressed records within the limit (a vector that doubles: up to twice that) and a
/// codec's working memory.
pub fn batch_bound(len: usize, limit: usize) -> usize {
    8 * len + 2 * limit + (1 << 20)
}
