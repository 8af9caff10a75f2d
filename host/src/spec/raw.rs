//! The serde-facing shape of a workflow file: every value keeps its source location, unknown
//! keys are refused, and scalars are read as text so that [`super::parse`] can check them
//! itself (collecting every problem, with messages that say what to write instead).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

pub type Text = Spanned<String>;

/// The keys each mapping accepts, for messages (serde reports them too; these are checked
/// against the structs by a test).
pub const WORKFLOW_KEYS: &[&str] = &[
    "version",
    "name",
    "vars",
    "max_concurrency",
    "timeout",
    "on_failure",
    "protect",
    "repair",
    "agents",
    "steps",
];
pub const AGENT_KEYS: &[&str] = &["cli", "model", "command", "timeout", "env"];
pub const STEP_KEYS: &[&str] = &[
    "name",
    "needs",
    "run",
    "agent",
    "task",
    "gate",
    "with",
    "sha256",
    "grants",
    "timeout",
    "retries",
    "env",
    "cwd",
    "verify",
    "allow_failure",
    "repair",
    "protect",
    "produces",
    "commit",
];
pub const CHECK_KEYS: &[&str] =
    &["exit_code", "output_contains", "output_matches", "file_exists", "gate", "with", "sha256", "grants"];
pub const GRANT_KEYS: &[&str] = &["read", "write", "exec"];
pub const REPAIR_KEYS: &[&str] = &["agent", "attempts"];
pub const COMMIT_KEYS: &[&str] = &["message", "paths", "requires", "skip_hooks"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflow {
    pub version: Option<Text>,
    pub name: Option<Text>,
    pub vars: Option<Entries<Text>>,
    pub max_concurrency: Option<Text>,
    pub timeout: Option<Text>,
    pub on_failure: Option<Text>,
    pub protect: Option<Vec<Text>>,
    pub repair: Option<Spanned<Node>>,
    pub agents: Option<Entries<Spanned<RawAgent>>>,
    pub steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub cli: Option<Text>,
    pub model: Option<Text>,
    pub command: Option<Spanned<Vec<Text>>>,
    pub timeout: Option<Text>,
    pub env: Option<Vec<Text>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<Text>,
    pub needs: Option<Vec<Text>>,
    pub run: Option<Text>,
    pub agent: Option<Text>,
    pub task: Option<Text>,
    pub gate: Option<Text>,
    pub with: Option<Spanned<Node>>,
    pub sha256: Option<Text>,
    pub grants: Option<Spanned<RawGrants>>,
    pub timeout: Option<Text>,
    pub retries: Option<Text>,
    pub env: Option<Entries<Text>>,
    pub cwd: Option<Text>,
    pub verify: Option<Vec<Spanned<RawCheck>>>,
    pub allow_failure: Option<Text>,
    pub repair: Option<Spanned<Node>>,
    pub protect: Option<Vec<Text>>,
    pub produces: Option<Vec<Text>>,
    pub commit: Option<Spanned<RawCommit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommit {
    pub message: Option<Text>,
    pub paths: Option<Vec<Text>>,
    pub requires: Option<Vec<Text>>,
    pub skip_hooks: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub exit_code: Option<Text>,
    pub output_contains: Option<Text>,
    pub output_matches: Option<Text>,
    pub file_exists: Option<Text>,
    pub gate: Option<Text>,
    pub with: Option<Spanned<Node>>,
    pub sha256: Option<Text>,
    pub grants: Option<Spanned<RawGrants>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrants {
    pub read: Option<Vec<Text>>,
    pub write: Option<Vec<Text>>,
    pub exec: Option<Vec<Text>>,
}

/// A mapping in file order, with the location of each key (serde's maps drop both).
pub struct Entries<V>(pub Vec<(Text, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// Any YAML value, with locations all the way down (gate parameters).
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Text, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
                Node::deserialize(deserializer)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
                Ok(Node::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}
