//! The log line format of `serve`: the layout of tracing-subscriber's plain and flattened
//! JSON formats, written directly. A busy master writes one audit line per activation, so
//! a line costs a few string appends rather than a pass through the general formatter.
//!
//! Text: `2026-12-03T18:04:22.466030Z  INFO mdtoken::audit: activation event="activation" client=127.0.0.1:39810`
//! (strings quoted and escaped, displayed values as they are).
//!
//! JSON: `{"timestamp":"2026-12-03T18:04:22.466030Z","level":"INFO","message":"activation","event":"activation","client":"127.0.0.1:39810","target":"mdtoken::audit"}`.
//!
//! Either way, a value can never break out of its line: control characters, quotes and
//! backslashes are escaped, and anything but printable ASCII takes the escaping of
//! `Debug` (text) or of JSON.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter: plain text or one JSON object per line.
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    /// JSON instead of text.
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(256);
        if self.json {
            line.push_str("{\"timestamp\":\"");
            timestamp(&mut line);
            line.push_str("\",\"level\":\"");
            line.push_str(level(meta.level()).trim_start());
            line.push('"');
            event.record(&mut Json(&mut line));
            line.push_str(",\"target\":");
            json_str(&mut line, meta.target());
            line.push('}');
        } else {
            timestamp(&mut line);
            line.push(' ');
            line.push_str(level(meta.level()));
            line.push(' ');
            line.push_str(meta.target());
            line.push(':');
            event.record(&mut Text(&mut line));
        }
        line.push('\n');
        writer.write_str(&line)
    }
}

fn level(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => " WARN",
        Level::INFO => " INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// RFC 3339 UTC with microseconds; the part up to the second is formatted once a second
/// per thread.
fn timestamp(out: &mut String) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            let t = time::OffsetDateTime::from_unix_timestamp(secs as i64)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            text.clear();
            let _ = write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            *cached = secs;
        }
        out.push_str(text);
    });
    let _ = write!(out, ".{:06}Z", now.subsec_micros());
}

/// Printable ASCII other than `"` and `\`: written as it stands in either format.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

fn json_str(out: &mut String, s: &str) {
    if plain(s) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// `key=value` pairs after the message.
struct Text<'a>(&'a mut String);

impl Text<'_> {
    fn key(&mut self, field: &Field) {
        self.0.push(' ');
        self.0.push_str(field.name());
        self.0.push('=');
    }
}

impl Visit for Text<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push(' ');
            // The message is the program's own text, but stays on its line regardless.
            if value.bytes().all(|b| b >= 0x20 && b != 0x7f) {
                self.0.push_str(value);
            } else {
                let _ = write!(self.0, "{}", value.escape_debug());
            }
            return;
        }
        self.key(field);
        if plain(value) {
            self.0.push('"');
            self.0.push_str(value);
            self.0.push('"');
        } else {
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let start = self.0.len();
        if field.name() == "message" {
            self.0.push(' ');
        } else {
            self.key(field);
        }
        let at = self.0.len();
        let _ = write!(self.0, "{value:?}");
        // A displayed value (an address, an error chain) is written bare, unless it
        // would run onto another line or be read as more than one field.
        if self.0[at..].bytes().any(|b| b < 0x20 || b == 0x7f) {
            let text = self.0.split_off(at);
            self.0.truncate(start.max(at));
            let _ = write!(self.0, "{}", text.escape_debug());
        }
    }
}

/// `,"key":value` members after the level.
struct Json<'a>(&'a mut String);

impl Json<'_> {
    fn key(&mut self, field: &Field) {
        self.0.push(',');
        json_str(self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for Json<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_str(self.0, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        json_str(self.0, &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(json: bool, f: impl FnOnce()) -> String {
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LineFormat { json })
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    fn event() {
        let client = std::net::SocketAddr::from(([127, 0, 0, 1], 39810));
        tracing::info!(
            target: "mdtoken::audit",
            event = "activation",
            outcome = "rejected",
            reason = Some("malformed"),
            jti = None::<&str>,
            user = "ann \"the admin\"\nINFO forged=line",
            device = "pc-\u{2028}1",
            exp = 1_800_000_000_i64,
            verify_only = false,
            client = %client,
            "activation"
        );
    }

    #[test]
    fn text_lines_quote_and_escape_strings_and_stay_on_one_line() {
        let text = capture(false, event);
        assert_eq!(text.lines().count(), 1, "{text}");
        let (stamp, rest) = text.split_once(' ').unwrap();
        assert!(
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{stamp}"
        );
        assert_eq!(
            rest,
            " INFO mdtoken::audit: activation event=\"activation\" outcome=\"rejected\" \
             reason=\"malformed\" user=\"ann \\\"the admin\\\"\\nINFO forged=line\" \
             device=\"pc-\\u{2028}1\" exp=1800000000 verify_only=false client=127.0.0.1:39810\n"
        );
        let warn = capture(false, || tracing::warn!(error = %"two\nlines", "kept"));
        assert!(
            warn.ends_with("Z  WARN mdtoken::logline::tests: kept error=two\\nlines\n"),
            "{warn}"
        );
        assert_eq!(warn.lines().count(), 1, "{warn}");
    }

    #[test]
    fn json_lines_are_flat_objects() {
        let text = capture(true, event);
        assert_eq!(text.lines().count(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "activation");
        assert_eq!(v["target"], "mdtoken::audit");
        assert_eq!(v["user"], "ann \"the admin\"\nINFO forged=line");
        assert_eq!(v["device"], "pc-\u{2028}1");
        assert_eq!(v["client"], "127.0.0.1:39810");
        assert_eq!(v["exp"], 1_800_000_000_i64);
        assert_eq!(v["verify_only"], false);
        assert!(v.get("jti").is_none());
        let stamp = v["timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{stamp}"
        );
    }
}
