//! JSON-RPC error answers given before rmcp sees a request (a refused Host or Origin, an unknown
//! session, a body that is not JSON), built in one place so their shape cannot drift: a JSON-RPC
//! 2.0 error object with `id: null`, since the request's id is unknown or untrusted at that point.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Request-extension marker: the body is (or its batch holds) an `initialize` request, so this
/// request may open a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitializeRequest;

/// The JSON-RPC error codes these answers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// -32700: the body is not JSON (JSON-RPC 2.0 §5.1).
    ParseError,
    /// -32600: the request is refused as a whole.
    InvalidRequest,
    /// -32001: the session does not exist (or is not the caller's), as rmcp answers.
    SessionNotFound,
    /// -32000: the server will not take this request now (a cap or a rate limit); try later.
    ServerBusy,
    /// -32603: the gateway's upstream failed the request (JSON-RPC's internal error).
    UpstreamFailed,
}

impl ErrorCode {
    fn code(self) -> i32 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::SessionNotFound => -32001,
            Self::ServerBusy => -32000,
            Self::UpstreamFailed => -32603,
        }
    }
}

/// `status` with a JSON-RPC error body.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": code.code(), "message": message}});
    (status, Json(body)).into_response()
}

/// The `visit_*` methods of a visitor that answers `$value` for every JSON scalar (and for a
/// string too, when asked): the readers below keep only a few strings of a body.
macro_rules! answer_scalars_with {
    ($value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
    ($value:expr, str) => {
        answer_scalars_with!($value);
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// What the scope gate reads of a JSON-RPC body: each message's `method` and `params.name`, read
/// as `serde_json::Value` reads them (a member given twice counts its last value, a value that is
/// not a string counts as absent, anything but an object is a message without a method), but
/// without building the document: the body is checked as JSON and only those strings are kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    /// Each message, in order.
    pub(crate) messages: Vec<Call<'a>>,
    /// Whether the body is a batch (an array).
    pub(crate) batch: bool,
}

/// One message's method and, when it has `params.name`, that name.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    pub(crate) method: Option<std::borrow::Cow<'a, str>>,
    pub(crate) name: Option<std::borrow::Cow<'a, str>>,
    /// `method`, `params` or `params.name` given twice, or beside a spelling that a lenient
    /// decoder takes for it (Go's `encoding/json` matches member names ignoring case, `ſ` and
    /// the Kelvin sign included): another reader may see another method or tool than this one.
    pub(crate) ambiguous: bool,
}

/// Whether `key` is not `target` but a decoder matching names case-insensitively (with Unicode's
/// simple folding, as Go's `encoding/json` does) would take it for `target` (ASCII, lower case).
fn loosely_equals(key: &str, target: &str) -> bool {
    let fold = |c: char| match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    };
    key != target && key.chars().count() == target.len() && key.chars().map(fold).eq(target.chars())
}

impl Envelope<'_> {
    /// Whether a message is an `initialize` request.
    pub(crate) fn is_initialize(&self) -> bool {
        self.messages
            .iter()
            .any(|call| call.method.as_deref() == Some("initialize"))
    }
}

impl<'de> serde::Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut messages = Vec::new();
                while let Some(call) = seq.next_element::<Call<'de>>()? {
                    messages.push(call);
                }
                Ok(Envelope {
                    messages,
                    batch: true,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let call = CallVisit.visit_map(map)?;
                Ok(Envelope {
                    messages: vec![call],
                    batch: false,
                })
            }
            answer_scalars_with!(single_without_method(), str);
        }
        fn single_without_method<'a>() -> Envelope<'a> {
            Envelope {
                messages: vec![Call::default()],
                batch: false,
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Reads one message: any JSON, an object's `method` and `params.name` kept.
struct CallVisit;

impl<'de> serde::de::Visitor<'de> for CallVisit {
    type Value = Call<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut call = Call::default();
        let (mut methods, mut params) = (0u32, 0u32);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "method" => {
                    methods += 1;
                    call.method = map.next_value::<MaybeStr<'de>>()?.0;
                }
                "params" => {
                    params += 1;
                    let read = map.next_value::<ParamsName<'de>>()?;
                    call.name = read.0;
                    call.ambiguous |= read.1;
                }
                other => {
                    call.ambiguous |=
                        loosely_equals(other, "method") || loosely_equals(other, "params");
                    map.next_value::<Skip>()?;
                }
            }
        }
        call.ambiguous |= methods > 1 || params > 1;
        Ok(call)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Call::default())
    }
    answer_scalars_with!(Call::default(), str);
}

impl<'de> serde::Deserialize<'de> for Call<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CallVisit)
    }
}

/// Any JSON value, read through and dropped. Unlike serde's `IgnoredAny` it reads numbers as
/// `serde_json::Value` does (a number out of range is an error), so the gate refuses exactly the
/// bodies it refused when it built the whole document.
struct Skip;

impl<'de> serde::Deserialize<'de> for Skip {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Skip;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(Skip)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(Skip)
            }
            answer_scalars_with!(Skip, str);
        }
        deserializer.deserialize_any(Visit)
    }
}

/// A string value, or nothing for any other JSON value (which is still read through).
struct MaybeStr<'a>(Option<std::borrow::Cow<'a, str>>);

impl<'de> serde::Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(std::borrow::Cow::Borrowed(value))))
            }
            fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(std::borrow::Cow::Owned(value.to_owned()))))
            }
            fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
                Ok(MaybeStr(Some(std::borrow::Cow::Owned(value))))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Skip, Skip>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            answer_scalars_with!(MaybeStr(None));
        }
        deserializer.deserialize_any(Visit)
    }
}

/// `params.name` when `params` is an object with a string `name`; whether that name is ambiguous
/// (see [`Call::ambiguous`]).
struct ParamsName<'a>(Option<std::borrow::Cow<'a, str>>, bool);

impl<'de> serde::Deserialize<'de> for ParamsName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = ParamsName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let (mut name, mut names, mut ambiguous) = (None, 0u32, false);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "name" {
                        names += 1;
                        name = map.next_value::<MaybeStr<'de>>()?.0;
                    } else {
                        ambiguous |= loosely_equals(&key, "name");
                        map.next_value::<Skip>()?;
                    }
                }
                Ok(ParamsName(name, ambiguous || names > 1))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Skip>()?.is_some() {}
                Ok(ParamsName(None, false))
            }
            answer_scalars_with!(ParamsName(None, false), str);
        }
        deserializer.deserialize_any(Visit)
    }
}

#[cfg(test)]
mod envelope_tests {
    use serde_json::Value;

    use super::*;

    /// Batch or not, and each message's method and `params.name`.
    type Read = Option<(bool, Vec<(Option<String>, Option<String>)>)>;

    /// What `serde_json::Value` makes of a body: each message's method and `params.name`.
    fn as_value_reads_it(body: &str) -> Read {
        let value: Value = serde_json::from_str(body).ok()?;
        let read = |m: &Value| {
            (
                m.get("method").and_then(Value::as_str).map(str::to_owned),
                m.pointer("/params/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            )
        };
        Some(match &value {
            Value::Array(batch) => (true, batch.iter().map(read).collect()),
            single => (false, vec![read(single)]),
        })
    }

    fn as_the_gate_reads_it(body: &str) -> Read {
        let envelope: Envelope<'_> = serde_json::from_str(body).ok()?;
        Some((
            envelope.batch,
            envelope
                .messages
                .iter()
                .map(|c| {
                    (
                        c.method.as_deref().map(str::to_owned),
                        c.name.as_deref().map(str::to_owned),
                    )
                })
                .collect(),
        ))
    }

    /// The gate reads every body as `serde_json::Value` would, duplicates, escapes, odd types
    /// and malformed JSON included.
    #[test]
    fn the_envelope_reads_what_a_json_value_reads() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{}}}"#,
            r#"{"method":"tools/call","params":{"name":"get_me","name":"save_note"}}"#,
            r#"{"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"a"},"params":{"other":1}}"#,
            r#"{"method":"tools\u002fcall","params":{"name":"s\u0061ve"}}"#,
            r#"{"method":7,"params":{"name":["x"]}}"#,
            r#"{"method":"tools/call","params":[1,2]}"#,
            r#"{"method":"tools/call","params":"name"}"#,
            r#"[{"method":"initialize"},{"method":"tools/call","params":{"name":"t"}},5,"x",null,[]]"#,
            r#"[]"#,
            r#"5"#,
            r#""text""#,
            r#"null"#,
            r#"{"method":{"nested":"tools/call"}}"#,
            r#"{"a":{"b":[{"c":null}]},"method":"ping"}"#,
            r#"{"method":"tools/call""#,
            r#"{"method":"tools/call"} trailing"#,
            r#"{"method":"\ud800"}"#,
            r#"not json"#,
            r#"{"method":"ping","x":1e400}"#,
        ] {
            assert_eq!(
                as_the_gate_reads_it(body),
                as_value_reads_it(body),
                "{body}"
            );
        }
    }
}
