//! The log writer of `serve`: lines are appended to a shared buffer and a background
//! thread writes them out in batches, so an activation does not wait for the terminal or
//! the journal to take its line and a busy server makes one `write` for hundreds of lines.
//!
//! - **Batching without a wake-up per line.** A caller only wakes the writer thread when it
//!   finds it asleep on an empty buffer. Once awake, the writer lets lines gather for
//!   [`BATCH_WINDOW`] before it takes them all, so under load it wakes a few hundred times
//!   a second however many lines arrive, and a line on an idle server is out within the
//!   window.
//! - **Nothing dropped.** When the writer falls behind and [`MAX_PENDING`] bytes are
//!   waiting, callers block until it has taken them: audit lines are never discarded, and
//!   memory stays bounded.
//! - **Nothing left behind on exit.** Dropping the [`Guard`] writes every pending line and
//!   flushes before it returns.
//!
//! A line is handed over whole (the formatter writes each event with one `write_all`), so
//! lines from different threads never interleave. A destination that stops taking lines
//! (a stalled journal, a paused terminal) stalls the server once [`MAX_PENDING`] bytes
//! wait: that is the price of never dropping an audit line. A destination that is not
//! ready (`EAGAIN` on a non-blocking descriptor) is retried; one that fails outright (a
//! closed pipe) loses the rest of that batch, whose last line is then ended, so the next
//! batch starts on a line of its own and a broken destination cannot stall activations.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after it wakes.
pub const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// Bytes waiting for the writer beyond which callers block until it has taken them.
pub const MAX_PENDING: usize = 1 << 20;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// The writer is waiting for a first line and must be woken.
    writer_asleep: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when lines arrive at an empty buffer, and on close.
    arrived: Condvar,
    /// Signalled when the writer has taken the pending lines.
    taken: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer's front end: cheap to clone, one per event.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Owns the writer thread; dropping it writes out everything pending and stops it.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `sink`.
///
/// # Errors
/// If the thread cannot be spawned.
pub fn spawn<W: Write + Send + 'static>(sink: W) -> io::Result<(BatchWriter, Guard)> {
    let shared = Arc::new(Shared::default());
    let worker = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("mdtoken-log".into())
        .spawn(move || run(&worker, sink))?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn run<W: Write>(shared: &Shared, mut sink: W) {
    let mut batch = Vec::new();
    loop {
        let mut pending = shared.lock();
        while pending.lines.is_empty() && !pending.closed {
            pending.writer_asleep = true;
            pending = shared
                .arrived
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        pending.writer_asleep = false;
        if pending.lines.is_empty() {
            return; // closed, and everything written
        }
        if !pending.closed && pending.lines.len() < MAX_PENDING / 2 {
            drop(pending);
            std::thread::sleep(BATCH_WINDOW);
            pending = shared.lock();
        }
        std::mem::swap(&mut batch, &mut pending.lines);
        drop(pending);
        shared.taken.notify_all();
        write_batch(&mut sink, &batch);
        batch.clear();
        if batch.capacity() > 2 * MAX_PENDING {
            batch.shrink_to(MAX_PENDING);
        }
    }
}

/// Writes `batch`, retrying while the sink is not ready. On a failure, the rest of the
/// batch is lost rather than stalling every caller behind it; a line cut short is ended.
fn write_batch<W: Write>(sink: &mut W, batch: &[u8]) {
    let mut rest = batch;
    while !rest.is_empty() {
        match sink.write(rest) {
            Ok(0) => break,
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => break,
        }
    }
    if !rest.is_empty() && rest.len() < batch.len() && batch[batch.len() - rest.len() - 1] != b'\n'
    {
        let _ = sink.write_all(b"\n");
    }
    let _ = sink.flush();
}

impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.shared.lock();
        while pending.lines.len() >= MAX_PENDING && !pending.closed {
            pending = self
                .shared
                .taken
                .wait(pending)
                .unwrap_or_else(|p| p.into_inner());
        }
        if pending.closed && pending.lines.len() >= MAX_PENDING {
            // Shut down and far behind: nobody will write this out.
            return Ok(buf.len());
        }
        pending.lines.extend_from_slice(buf);
        if pending.writer_asleep {
            pending.writer_asleep = false;
            drop(pending);
            self.shared.arrived.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.arrived.notify_one();
        self.shared.taken.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that records what it was given, optionally slowly, and counts writes.
    #[derive(Clone, Default)]
    struct Sink {
        data: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
        fail: bool,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.delay);
            *self.writes.lock().unwrap() += 1;
            if self.fail {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            self.data.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(thread: usize, n: usize) -> String {
        format!("thread {thread} line {n} {}\n", "x".repeat(n % 97))
    }

    #[test]
    fn every_line_arrives_whole_and_in_order_per_thread() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let mut w = writer.clone();
                s.spawn(move || {
                    for n in 0..5000 {
                        w.write_all(line(t, n).as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(guard);
        let data = String::from_utf8(sink.data.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for l in data.lines() {
            let mut words = l.split(' ');
            assert_eq!(words.next(), Some("thread"));
            let t: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(
                format!("{l}\n"),
                line(t, next[t]),
                "line out of order or torn"
            );
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
        // Batched: far fewer writes than lines.
        assert!(*sink.writes.lock().unwrap() < 20_000 / 10);
    }

    #[test]
    fn a_slow_sink_blocks_callers_instead_of_losing_lines_or_growing() {
        let sink = Sink {
            delay: Duration::from_millis(20),
            ..Sink::default()
        };
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let big = vec![b'y'; 64 * 1024 - 1];
        let mut w = writer.clone();
        for _ in 0..64 {
            w.write_all(&big).unwrap();
            w.write_all(b"\n").unwrap();
            assert!(writer.shared.lock().lines.len() <= MAX_PENDING + big.len());
        }
        drop(guard);
        let data = sink.data.lock().unwrap();
        assert_eq!(data.len(), 64 * 64 * 1024);
        assert_eq!(data.iter().filter(|&&b| b == b'\n').count(), 64);
    }

    #[test]
    fn a_line_on_an_idle_writer_goes_out_without_a_flush_or_shutdown() {
        let sink = Sink::default();
        let (mut writer, _guard) = spawn(sink.clone()).unwrap();
        for n in 0..3 {
            writer.write_all(line(0, n).as_bytes()).unwrap();
            // Wait for it without a deadline on the clock: it must come, or the test hangs.
            while !String::from_utf8_lossy(&sink.data.lock().unwrap()).contains(&line(0, n)) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Takes at most 7 bytes a call and says "not ready" every other call.
    struct Grudging {
        data: Arc<Mutex<Vec<u8>>>,
        calls: usize,
    }

    impl Write for Grudging {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(2) {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            let n = buf.len().min(7);
            self.data.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_that_is_not_ready_or_takes_part_of_a_write_gets_every_byte() {
        let data = Arc::new(Mutex::new(Vec::new()));
        let (mut writer, guard) = spawn(Grudging {
            data: Arc::clone(&data),
            calls: 0,
        })
        .unwrap();
        let mut expected = String::new();
        for n in 0..500 {
            writer.write_all(line(2, n).as_bytes()).unwrap();
            expected.push_str(&line(2, n));
        }
        drop(guard);
        assert_eq!(
            String::from_utf8(data.lock().unwrap().clone()).unwrap(),
            expected
        );
    }

    #[test]
    fn a_failing_sink_does_not_stall_callers() {
        let sink = Sink {
            fail: true,
            ..Sink::default()
        };
        let (mut writer, guard) = spawn(sink.clone()).unwrap();
        for n in 0..20_000 {
            writer.write_all(line(1, n).as_bytes()).unwrap();
        }
        drop(guard);
        assert!(*sink.writes.lock().unwrap() >= 1);
    }
}
