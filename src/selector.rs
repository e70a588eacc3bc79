//! Label match-expressions: parsing (from YAML and from the command line), validation and
//! evaluation against a module version's labels.
//!
//! The semantics are those of Kubernetes label selectors (`in`, `notin`, `exists`,
//! `doesnotexist`, plus `eq`/`ne` as their one-value forms), extended with semver comparisons
//! (`gt`, `ge`, `lt`, `le`, `semver`). This module is pure: it never touches the disk or the
//! engine, so it can be tested exhaustively and used on any hot path.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::json_scalar::{JSON_TEXT, Reading, visit_json_text};

/// The labels of one module version: key to value, values kept as text.
pub type Labels = BTreeMap<String, String>;

/// A label key in Kubernetes syntax: `[prefix/]name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        validate_key(key).map(|()| Key(key.to_owned()))
    }
}

/// Checks a label key against the Kubernetes syntax and says what is wrong with it.
pub fn validate_key(key: &str) -> Result<(), String> {
    // The common case, a plain name like `kind`, is checked in one pass over its bytes.
    let bytes = key.as_bytes();
    let plain = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        return Ok(());
    }
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > 253 {
            return Err(format!(
                "invalid label key `{key}`: the prefix before `/` must be 1 to 253 characters"
            ));
        }
        // Kubernetes checks the prefix against its DNS-1123 subdomain pattern and total length
        // only, not the length of each dot-separated part: so does e.
        let dns_label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !prefix.split('.').all(dns_label_ok) {
            return Err(format!(
                "invalid label key `{key}`: the prefix `{prefix}` must be a DNS subdomain \
                 (lowercase letters, digits, `-` and `.`, like `example.com`)"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 {
        return Err(format!(
            "invalid label key `{key}`: the name must be 1 to 63 characters"
        ));
    }
    let inner_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let bytes = name.as_bytes();
    let edges_ok =
        bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if let Some(bad) = name.chars().find(|c| !c.is_ascii() || !inner_ok(*c as u8)) {
        return Err(format!(
            "invalid label key `{key}`: character `{bad}` is not allowed (use letters, digits, `-`, `_` and `.`)"
        ));
    }
    if !edges_ok {
        return Err(format!(
            "invalid label key `{key}`: it must begin and end with a letter or digit"
        ));
    }
    Ok(())
}

/// How an expression compares a label with its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// The label equals the one value.
    Eq,
    /// The label is absent or differs from the one value.
    Ne,
    /// The label is one of the values.
    In,
    /// The label is absent or none of the values.
    NotIn,
    /// The label is present, whatever its value.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// The label is a semver version greater than the one value.
    Gt,
    /// The label is a semver version greater than or equal to the one value.
    Ge,
    /// The label is a semver version less than the one value.
    Lt,
    /// The label is a semver version less than or equal to the one value.
    Le,
    /// The label is a semver version that satisfies the one requirement (`>=2.5, <3`).
    Semver,
}

impl Operator {
    /// Every operator with its canonical spelling, in the order the docs list them.
    pub const ALL: [(Operator, &'static str); 11] = [
        (Operator::Eq, "eq"),
        (Operator::Ne, "ne"),
        (Operator::In, "in"),
        (Operator::NotIn, "notin"),
        (Operator::Exists, "exists"),
        (Operator::DoesNotExist, "doesnotexist"),
        (Operator::Gt, "gt"),
        (Operator::Ge, "ge"),
        (Operator::Lt, "lt"),
        (Operator::Le, "le"),
        (Operator::Semver, "semver"),
    ];

    /// Parses the YAML spelling: the canonical lowercase names and the Kubernetes ones.
    pub fn parse(word: &str) -> Option<Operator> {
        let kubernetes = match word {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            "Gt" => Some(Operator::Gt),
            "Lt" => Some(Operator::Lt),
            _ => None,
        };
        kubernetes.or_else(|| {
            Operator::ALL
                .iter()
                .find(|(_, name)| *name == word)
                .map(|(op, _)| *op)
        })
    }

    /// The canonical spelling.
    pub fn name(self) -> &'static str {
        Operator::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map(|(_, name)| *name)
            .expect("every operator is listed in Operator::ALL")
    }

    fn arity(self) -> Arity {
        match self {
            Operator::In | Operator::NotIn => Arity::AtLeastOne,
            Operator::Exists | Operator::DoesNotExist => Arity::None,
            _ => Arity::ExactlyOne,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

enum Arity {
    None,
    ExactlyOne,
    AtLeastOne,
}

/// The parsed semver operand of a semver operator, kept so evaluation never re-parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    None,
    Version(semver::Version),
    Requirement(semver::VersionReq),
}

/// One match-expression: `{key, operator, values}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    key: Key,
    operator: Operator,
    values: Vec<String>,
    operand: Operand,
}

impl Expression {
    /// Builds an expression and checks that its values fit its operator.
    pub fn new(key: Key, operator: Operator, values: Vec<String>) -> Result<Expression, String> {
        let count = values.len();
        match operator.arity() {
            Arity::None if count != 0 => {
                return Err(format!(
                    "operator `{operator}` takes no values, found {count} (remove `values`)"
                ));
            }
            Arity::ExactlyOne if count != 1 => {
                return Err(format!(
                    "operator `{operator}` takes exactly one value, found {count}"
                ));
            }
            Arity::AtLeastOne if count == 0 => {
                return Err(format!(
                    "operator `{operator}` needs at least one value, found none"
                ));
            }
            _ => {}
        }
        let operand = match operator {
            Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le => {
                let version = semver::Version::parse(values[0].trim()).map_err(|err| {
                    format!(
                        "operator `{operator}` compares semver versions, but `{}` is not one ({err}); \
                         write a full version like `1.2.0`",
                        values[0]
                    )
                })?;
                Operand::Version(version)
            }
            Operator::Semver => {
                let requirement = semver::VersionReq::parse(values[0].trim()).map_err(|err| {
                    format!(
                        "operator `semver` needs a semver requirement, but `{}` is not one ({err}); \
                         write one like `>=2.5, <3`",
                        values[0]
                    )
                })?;
                Operand::Requirement(requirement)
            }
            _ => Operand::None,
        };
        Ok(Expression {
            key,
            operator,
            values,
            operand,
        })
    }

    /// The label key this expression looks at.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as written.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this expression.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(self.key.as_str()).map(String::as_str))
    }

    /// Whether a label with this value (`None`: no such label) satisfies this expression.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let listed = |v: &str| self.values.iter().any(|listed| listed == v);
        match self.operator {
            Operator::Eq | Operator::In => value.is_some_and(listed),
            Operator::Ne | Operator::NotIn => value.is_none_or(|v| !listed(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt | Operator::Ge | Operator::Lt | Operator::Le | Operator::Semver => {
                let Some(version) = value.and_then(|v| semver::Version::parse(v.trim()).ok())
                else {
                    return false;
                };
                match &self.operand {
                    // Semver precedence ignores build metadata: `1.0.0+build.5` is `1.0.0`.
                    Operand::Version(operand) => match version.cmp_precedence(operand) {
                        Ordering::Greater => matches!(self.operator, Operator::Gt | Operator::Ge),
                        Ordering::Equal => matches!(self.operator, Operator::Ge | Operator::Le),
                        Ordering::Less => matches!(self.operator, Operator::Lt | Operator::Le),
                    },
                    Operand::Requirement(requirement) => requirement.matches(&version),
                    Operand::None => unreachable!("semver operators always carry an operand"),
                }
            }
        }
    }
}

impl fmt::Display for Expression {
    /// The command-line form of the expression, which parses back to the same expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let value = quote_if_needed;
        match self.operator {
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Eq => write!(f, "{key}={}", value(&self.values[0])),
            Operator::Ne => write!(f, "{key}!={}", value(&self.values[0])),
            Operator::Gt => write!(f, "{key}>{}", self.values[0]),
            Operator::Ge => write!(f, "{key}>={}", self.values[0]),
            Operator::Lt => write!(f, "{key}<{}", self.values[0]),
            Operator::Le => write!(f, "{key}<={}", self.values[0]),
            Operator::Semver => write!(f, "{key} semver ({})", self.values[0]),
            Operator::In | Operator::NotIn => {
                let values: Vec<std::borrow::Cow<'_, str>> =
                    self.values.iter().map(|v| value(v)).collect();
                write!(f, "{key} {} ({})", self.operator, values.join(", "))
            }
        }
    }
}

/// A value as a selector on the command line writes it: as it is when that reads back the
/// same, else in double quotes with `\\` and `"` escaped (`"Bare Metal Kafka"`).
pub fn quote_if_needed(value: &str) -> std::borrow::Cow<'_, str> {
    // Byte by byte while ASCII (nearly every value, and a tenth of `e list`'s time when
    // checked a char at a time); a non-ASCII letter is plain too.
    let plain_ascii =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':' | b'+');
    let plain = !value.is_empty()
        && match value.bytes().position(|b| !plain_ascii(b)) {
            None => true,
            Some(at) => value[at..]
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '+')),
        };
    if plain {
        std::borrow::Cow::Borrowed(value)
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")).into()
    }
}

/// How near a miss is: fewer failed expressions first, then more of the selector's keys
/// carried (the order of [`Ord`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nearness {
    failed: usize,
    shared: std::cmp::Reverse<usize>,
}

/// A list of match-expressions that must all hold for one module version.
///
/// In repository.yaml each requirement (`requires.strong[i]`, `requires.weak[i]`,
/// `influences[i]`) is one selector. An empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    expressions: Vec<Expression>,
}

impl Selector {
    /// A selector of these expressions.
    pub fn new(expressions: Vec<Expression>) -> Selector {
        Selector { expressions }
    }

    /// The expressions, all of which must hold.
    pub fn expressions(&self) -> &[Expression] {
        &self.expressions
    }

    /// Whether the labels satisfy every expression.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.expressions.iter().all(|e| e.matches(labels))
    }

    /// Like [`Selector::matches`], for labels that are not a [`Labels`] map: `value` gives a
    /// label's value by its key (the cache uses it to skip versions without building them).
    pub fn matches_with<'v>(&self, value: impl Fn(&str) -> Option<&'v str>) -> bool {
        self.expressions
            .iter()
            .all(|e| e.matches_value(value(e.key.as_str())))
    }

    /// How close labels come to satisfying the selector without doing so, to rank near misses
    /// (`value` as for [`Selector::matches_with`]); `None` when they satisfy it, or carry none
    /// of its keys and so are no near miss at all.
    pub fn nearness<'v>(&self, value: impl Fn(&str) -> Option<&'v str>) -> Option<Nearness> {
        let mut failed = 0;
        let mut shared = 0;
        for expression in &self.expressions {
            let found = value(expression.key.as_str());
            shared += usize::from(found.is_some());
            failed += usize::from(!expression.matches_value(found));
        }
        (shared > 0 && failed > 0).then_some(Nearness {
            failed,
            shared: std::cmp::Reverse(shared),
        })
    }

    /// The expressions the labels do not satisfy, to explain a near miss.
    pub fn failures<'s>(&'s self, labels: &Labels) -> Vec<&'s Expression> {
        self.failures_with(|key| labels.get(key).map(String::as_str))
    }

    /// Like [`Selector::failures`], `value` as for [`Selector::matches_with`].
    pub fn failures_with<'v>(&self, value: impl Fn(&str) -> Option<&'v str>) -> Vec<&Expression> {
        self.expressions
            .iter()
            .filter(|e| !e.matches_value(value(e.key.as_str())))
            .collect()
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.expressions.is_empty() {
            return f.write_str("(everything)");
        }
        for (i, expression) in self.expressions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{expression}")?;
        }
        Ok(())
    }
}

/// A selector written on the command line that does not parse, with where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector at column {}: {message}\n  {input}\n  {caret:>width$}", offset + 1, caret = "^", width = offset + 1)]
pub struct SelectorError {
    /// The selector as given.
    pub input: String,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl FromStr for Selector {
    type Err = SelectorError;

    /// Parses Kubernetes set-based syntax plus semver operators, for example
    /// `kind=monitoring,core-technology in (prometheus),!deprecated,version>=0.1.0`.
    fn from_str(input: &str) -> Result<Selector, SelectorError> {
        Parser { input, pos: 0 }.selector()
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, SelectorError> {
        Err(SelectorError {
            input: self.input.to_owned(),
            offset: offset.min(self.input.len()),
            message: message.into(),
        })
    }

    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn selector(mut self) -> Result<Selector, SelectorError> {
        let mut expressions = Vec::new();
        loop {
            self.skip_spaces();
            if self.pos == self.input.len() {
                if expressions.is_empty() {
                    return self.error(
                        self.pos,
                        "empty selector; write at least one expression, like `kind=monitoring`",
                    );
                }
                return self.error(self.pos, "expected an expression after `,`");
            }
            expressions.push(self.expression()?);
            self.skip_spaces();
            if self.pos == self.input.len() {
                return Ok(Selector::new(expressions));
            }
            if !self.eat(",") {
                return self.error(self.pos, "expected `,` between expressions");
            }
        }
    }

    fn key(&mut self) -> Result<Key, SelectorError> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '=' | '!' | '<' | '>' | ',' | '(' | ')')
            })
            .unwrap_or(self.rest().len());
        self.pos += len;
        let key = &self.input[start..self.pos];
        if key.is_empty() {
            return self.error(start, "expected a label key");
        }
        key.parse().or_else(|message| self.error(start, message))
    }

    fn expression(&mut self) -> Result<Expression, SelectorError> {
        let start = self.pos;
        if self.eat("!") {
            self.skip_spaces();
            let key = self.key()?;
            return self.build(start, key, Operator::DoesNotExist, Vec::new());
        }
        let key = self.key()?;
        self.skip_spaces();
        let op_start = self.pos;
        let symbolic = [
            ("==", Operator::Eq),
            ("!=", Operator::Ne),
            (">=", Operator::Ge),
            ("<=", Operator::Le),
            ("=", Operator::Eq),
            (">", Operator::Gt),
            ("<", Operator::Lt),
        ];
        for (token, operator) in symbolic {
            if self.eat(token) {
                let value = self.value()?;
                return self.build(op_start, key, operator, vec![value]);
            }
        }
        if self.pos == self.input.len() || self.rest().starts_with(',') {
            return self.build(start, key, Operator::Exists, Vec::new());
        }
        let word_len = self
            .rest()
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(self.rest().len());
        let word = match &self.rest()[..word_len] {
            "" => self
                .rest()
                .chars()
                .next()
                .map(String::from)
                .unwrap_or_default(),
            word => word.to_owned(),
        };
        let operator = match word.as_str() {
            "in" => Operator::In,
            "notin" => Operator::NotIn,
            "semver" => Operator::Semver,
            _ => {
                return self.error(
                    op_start,
                    format!(
                        "expected an operator after `{key}` (`=`, `!=`, `in`, `notin`, `>`, `>=`, `<`, `<=`, `semver`), found `{word}`"
                    ),
                );
            }
        };
        self.pos += word_len;
        self.skip_spaces();
        let open = self.pos;
        if !self.eat("(") {
            return self.error(open, format!("expected `(` after `{word}`"));
        }
        let close = match self.rest().find(')') {
            Some(close) => self.pos + close,
            None => return self.error(open, "this `(` is never closed"),
        };
        let inside = &self.input[self.pos..close];
        let values = if operator == Operator::Semver {
            vec![inside.trim().to_owned()]
        } else {
            let mut values = Vec::new();
            let mut item_start = self.pos;
            for item in inside.split(',') {
                let value =
                    unquote(item.trim()).or_else(|message| self.error(item_start, message))?;
                if value.is_empty() {
                    return self.error(item_start, "empty value in the list");
                }
                values.push(value);
                item_start += item.len() + 1;
            }
            values
        };
        self.pos = close + 1;
        self.build(op_start, key, operator, values)
    }

    /// A value after a symbolic operator: a quoted string or text up to the next `,`.
    fn value(&mut self) -> Result<String, SelectorError> {
        self.skip_spaces();
        let start = self.pos;
        if self.rest().starts_with('"') {
            let mut escaped = false;
            let end = self.rest()[1..].char_indices().find_map(|(i, c)| {
                let found = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                found.then_some(i + 2)
            });
            let Some(end) = end else {
                return self.error(start, "this quote is never closed");
            };
            let quoted = &self.input[start..start + end];
            self.pos += end;
            return unquote(quoted).or_else(|message| self.error(start, message));
        }
        let len = self.rest().find(',').unwrap_or(self.rest().len());
        let value = self.rest()[..len].trim_end().to_owned();
        if value.is_empty() {
            return self.error(start, "expected a value");
        }
        if let Some(bad) = value.find(['(', ')']) {
            return self.error(
                start + bad,
                "unexpected parenthesis in a value; quote the value",
            );
        }
        self.pos += len;
        Ok(value)
    }

    fn build(
        &self,
        at: usize,
        key: Key,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Expression, SelectorError> {
        Expression::new(key, operator, values).or_else(|message| self.error(at, message))
    }
}

fn unquote(text: &str) -> Result<String, String> {
    let Some(inner) = text.strip_prefix('"') else {
        return Ok(text.to_owned());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        return Err("this quote is never closed".to_owned());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A map key or short word, borrowed from the input when it can be, so that reading the
/// thousands of expressions of a large repository does not allocate for each field name.
struct FieldName<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A scalar written as a label value or an expression value, kept as the text written in the
/// file: `1.10` stays `1.10`, `0x1F`, `1e3` and `+1` stay as they are, and `true` is the text
/// `true`. YAML would resolve them to numbers and booleans that print differently, which would
/// change what a selector matches. A null (`~`, `null`, or nothing at all) is refused: it is no
/// value, and `""` is the empty one.
pub struct Scalar(pub String);

impl Scalar {
    /// Like [`Scalar`]'s `Deserialize`, but a null is `None`, for fields where it means "not set"
    /// or "empty".
    pub fn deserialize_nullable<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(Option::<Written>::deserialize(deserializer)?.map(|written| written.0))
    }

    /// A quantity (a limit) as text: a string, or a number or boolean as it prints. Unlike a
    /// label value it need not keep its spelling, and it reads from e's JSON cache, where
    /// quantities are numbers.
    pub fn deserialize_quantity<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<String, D::Error> {
        Ok(deserializer
            .deserialize_newtype_struct(JSON_TEXT, AsWritten(Reading::Resolved))?
            .0)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Scalar::deserialize_nullable(deserializer)? {
            Some(text) => Ok(Scalar(text)),
            None => Err(de::Error::custom(
                "a value is missing (`~`, `null` or nothing is no value); write `\"\"` for an empty one, or quote the text, like `\"null\"`",
            )),
        }
    }
}

/// A scalar's text as written: asked for as a string, so that serde_yaml hands over the text
/// of the scalar instead of the number or boolean it would resolve it to; serde_json hands
/// over the value's text (see `json_scalar.rs`), which YAML would read the same way.
struct Written(String);

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(JSON_TEXT, AsWritten(Reading::Written))
    }
}

/// Asks serde_json for a value's text, and any other deserializer for a string
/// ([`Reading::Written`]) or any value ([`Reading::Resolved`]), as before serde_json could.
struct AsWritten(Reading);

impl<'de> Visitor<'de> for AsWritten {
    type Value = Written;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        WrittenVisitor.expecting(f)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Written, D::Error> {
        match self.0 {
            Reading::Written => d.deserialize_str(WrittenVisitor),
            Reading::Resolved => d.deserialize_any(WrittenVisitor),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Written, A::Error> {
        visit_json_text(map, self.0, &WrittenVisitor).map(Written)
    }
}

struct WrittenVisitor;

impl Visitor<'_> for WrittenVisitor {
    type Value = Written;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Written, E> {
        Ok(Written(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Written, E> {
        Ok(Written(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Written, E> {
        Ok(Written(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Written, E> {
        Ok(Written(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Written, E> {
        Ok(Written(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Written, E> {
        Ok(Written(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Scalar::deserialize(deserializer)?.0;
        text.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Expression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpressionVisitor;
        impl<'de> Visitor<'de> for ExpressionVisitor {
            type Value = Expression;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a match-expression `{key, operator, values}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expression, A::Error> {
                let mut key: Option<Key> = None;
                let mut operator: Option<Operator> = None;
                let mut values: Option<Vec<String>> = None;
                while let Some(field) = map.next_key::<FieldName<'de>>()? {
                    match &*field.0 {
                        "key" if key.is_some() => return Err(de::Error::duplicate_field("key")),
                        "operator" if operator.is_some() => {
                            return Err(de::Error::duplicate_field("operator"));
                        }
                        "values" if values.is_some() => {
                            return Err(de::Error::duplicate_field("values"));
                        }
                        "key" => key = Some(map.next_value()?),
                        "operator" => {
                            let word = map.next_value::<FieldName<'de>>()?.0;
                            operator = Some(Operator::parse(&word).ok_or_else(|| {
                                let known: Vec<&str> =
                                    Operator::ALL.iter().map(|(_, name)| *name).collect();
                                de::Error::custom(format!(
                                    "unknown operator `{word}`, expected one of {}",
                                    known.join(", ")
                                ))
                            })?);
                        }
                        "values" => {
                            let scalars: Vec<Scalar> = map.next_value()?;
                            values = Some(scalars.into_iter().map(|s| s.0).collect());
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["key", "operator", "values"],
                            ));
                        }
                    }
                }
                let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
                let operator = operator.ok_or_else(|| de::Error::missing_field("operator"))?;
                Expression::new(key.clone(), operator, values.unwrap_or_default())
                    .map_err(|message| de::Error::custom(format!("key `{key}`: {message}")))
            }
        }
        deserializer.deserialize_map(ExpressionVisitor)
    }
}

impl Serialize for Expression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let with_values = !self.values.is_empty();
        let mut map = serializer.serialize_map(Some(2 + usize::from(with_values)))?;
        map.serialize_entry("key", &self.key)?;
        map.serialize_entry("operator", self.operator.name())?;
        if with_values {
            map.serialize_entry("values", &self.values)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SelectorVisitor;
        impl<'de> Visitor<'de> for SelectorVisitor {
            type Value = Selector;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of match-expressions that must all hold")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Selector, A::Error> {
                let mut expressions = Vec::new();
                while let Some(expression) = seq.next_element()? {
                    expressions.push(expression);
                }
                if expressions.is_empty() {
                    return Err(de::Error::custom(
                        "a requirement needs at least one match-expression",
                    ));
                }
                Ok(Selector::new(expressions))
            }
        }
        deserializer.deserialize_seq(SelectorVisitor)
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.expressions.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, operator: Operator, values: &[&str]) -> Expression {
        Expression::new(
            key.parse().unwrap(),
            operator,
            values.iter().map(|v| v.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn set_operators_follow_kubernetes_semantics() {
        let with = labels(&[("kind", "monitoring")]);
        let other = labels(&[("kind", "infrastructure")]);
        let absent = labels(&[]);
        let cases = [
            (
                expr("kind", Operator::In, &["monitoring", "logs"]),
                [true, false, false],
            ),
            (
                expr("kind", Operator::NotIn, &["monitoring"]),
                [false, true, true],
            ),
            (
                expr("kind", Operator::Eq, &["monitoring"]),
                [true, false, false],
            ),
            (
                expr("kind", Operator::Ne, &["monitoring"]),
                [false, true, true],
            ),
            (expr("kind", Operator::Exists, &[]), [true, true, false]),
            (
                expr("kind", Operator::DoesNotExist, &[]),
                [false, false, true],
            ),
        ];
        for (expression, expected) in cases {
            let got = [&with, &other, &absent].map(|l| expression.matches(l));
            assert_eq!(got, expected, "{expression}");
        }
    }

    #[test]
    fn empty_label_value_is_a_value() {
        let empty = labels(&[("tier", "")]);
        assert!(expr("tier", Operator::Exists, &[]).matches(&empty));
        assert!(expr("tier", Operator::Eq, &[""]).matches(&empty));
        assert!(!expr("tier", Operator::DoesNotExist, &[]).matches(&empty));
        assert!(expr("tier", Operator::Ne, &["x"]).matches(&empty));
    }

    #[test]
    fn semver_operators_compare_versions_and_never_match_non_versions() {
        let kafka = labels(&[("provides-kafka", "2.5.1"), ("name", "dev")]);
        assert!(expr("provides-kafka", Operator::Gt, &["2.5.0"]).matches(&kafka));
        assert!(!expr("provides-kafka", Operator::Gt, &["2.5.1"]).matches(&kafka));
        assert!(expr("provides-kafka", Operator::Ge, &["2.5.1"]).matches(&kafka));
        assert!(expr("provides-kafka", Operator::Lt, &["3.0.0"]).matches(&kafka));
        assert!(expr("provides-kafka", Operator::Le, &["2.5.1"]).matches(&kafka));
        assert!(!expr("provides-kafka", Operator::Lt, &["2.5.1"]).matches(&kafka));
        assert!(expr("provides-kafka", Operator::Semver, &[">=2.5, <3"]).matches(&kafka));
        assert!(!expr("provides-kafka", Operator::Semver, &[">=3"]).matches(&kafka));
        // A label that is not a version, or is absent, never satisfies a semver operator,
        // not even a "less than".
        assert!(!expr("name", Operator::Lt, &["9.9.9"]).matches(&kafka));
        assert!(!expr("name", Operator::Semver, &["*"]).matches(&kafka));
        assert!(!expr("missing", Operator::Lt, &["9.9.9"]).matches(&kafka));
    }

    #[test]
    fn semver_precedence_ignores_build_metadata() {
        let built = labels(&[("v", "1.0.0+build.5")]);
        assert!(expr("v", Operator::Le, &["1.0.0"]).matches(&built));
        assert!(expr("v", Operator::Ge, &["1.0.0"]).matches(&built));
        assert!(!expr("v", Operator::Gt, &["1.0.0"]).matches(&built));
        assert!(!expr("v", Operator::Lt, &["1.0.0"]).matches(&built));
        assert!(!expr("v", Operator::Gt, &["1.0.0+build.1"]).matches(&built));
        assert!(expr("v", Operator::Semver, &["<=1.0.0"]).matches(&built));
        assert!(!expr("v", Operator::Semver, &[">1.0.0"]).matches(&built));
    }

    #[test]
    fn operand_that_is_not_a_version_is_rejected() {
        let err =
            Expression::new("v".parse().unwrap(), Operator::Gt, vec!["latest".into()]).unwrap_err();
        assert!(err.contains("`latest` is not one"), "{err}");
        let err = Expression::new("v".parse().unwrap(), Operator::Semver, vec!["~>1".into()])
            .unwrap_err();
        assert!(err.contains("semver requirement"), "{err}");
    }

    #[test]
    fn arity_is_checked() {
        let key = || "k".parse::<Key>().unwrap();
        assert!(Expression::new(key(), Operator::In, vec![]).is_err());
        assert!(Expression::new(key(), Operator::NotIn, vec![]).is_err());
        assert!(Expression::new(key(), Operator::Eq, vec![]).is_err());
        assert!(Expression::new(key(), Operator::Eq, vec!["a".into(), "b".into()]).is_err());
        assert!(Expression::new(key(), Operator::Exists, vec!["a".into()]).is_err());
        assert!(Expression::new(key(), Operator::DoesNotExist, vec!["a".into()]).is_err());
        assert!(Expression::new(key(), Operator::In, vec!["a".into(), "b".into()]).is_ok());
    }

    #[test]
    fn keys_follow_kubernetes_syntax() {
        for good in [
            "kind",
            "provides-kafka",
            "a.b_c",
            "example.com/kind",
            "K8s",
            "x",
        ] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        for bad in [
            "provider,",
            "",
            "-kind",
            "kind-",
            "a b",
            "Example.com/kind",
            "/kind",
            "a/",
            "ké",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(64)).is_err());
        assert!(validate_key(&"a".repeat(63)).is_ok());
        // Kubernetes checks the prefix as a whole (a DNS subdomain of at most 253 characters),
        // not each of its dot-separated parts.
        assert!(validate_key(&format!("{}/kind", "a".repeat(253))).is_ok());
        assert!(validate_key(&format!("{}/kind", "a".repeat(254))).is_err());
        assert!(validate_key(&format!("{}.example.com/kind", "b".repeat(100))).is_ok());
    }

    #[test]
    fn kubernetes_operator_spellings_are_accepted() {
        assert_eq!(Operator::parse("In"), Some(Operator::In));
        assert_eq!(Operator::parse("NotIn"), Some(Operator::NotIn));
        assert_eq!(Operator::parse("Exists"), Some(Operator::Exists));
        assert_eq!(
            Operator::parse("DoesNotExist"),
            Some(Operator::DoesNotExist)
        );
        assert_eq!(Operator::parse("in,"), None);
        assert_eq!(Operator::parse("IN"), None);
    }

    #[test]
    fn string_form_parses_every_operator() {
        let selector: Selector =
            "kind=monitoring,core-technology in (prometheus, thanos),!deprecated,version>=0.1.0,tier,x!=y,z notin (a),v<2.0.0,w>1.0.0,u<=1.0.0,kafka semver (>=2.5, <3),e==f"
                .parse()
                .unwrap();
        let ops: Vec<Operator> = selector
            .expressions()
            .iter()
            .map(|e| e.operator())
            .collect();
        use Operator::*;
        assert_eq!(
            ops,
            [
                Eq,
                In,
                DoesNotExist,
                Ge,
                Exists,
                Ne,
                NotIn,
                Lt,
                Gt,
                Le,
                Semver,
                Eq
            ]
        );
        assert_eq!(selector.expressions()[1].values(), ["prometheus", "thanos"]);
        assert_eq!(selector.expressions()[10].values(), [">=2.5, <3"]);
    }

    #[test]
    fn string_form_round_trips_through_display() {
        for text in [
            "kind=monitoring,core-technology in (prometheus, thanos),!deprecated,version>=0.1.0",
            "name=\"Bare Metal Kafka\",kafka semver (>=2.5, <3)",
            "kind in (in, notin, exists)",
        ] {
            let selector: Selector = text.parse().unwrap();
            let again: Selector = selector.to_string().parse().unwrap();
            assert_eq!(selector, again, "{text}");
        }
    }

    #[test]
    fn keywords_can_be_values() {
        let selector: Selector = "kind in (in, notin),mode=exists,x=in".parse().unwrap();
        assert!(selector.matches(&labels(&[
            ("kind", "notin"),
            ("mode", "exists"),
            ("x", "in")
        ])));
    }

    #[test]
    fn quoted_values_keep_spaces_and_commas() {
        let selector: Selector = "name=\"Bare Metal, Kafka\"".parse().unwrap();
        assert!(selector.matches(&labels(&[("name", "Bare Metal, Kafka")])));
    }

    #[test]
    fn string_form_errors_point_at_the_problem() {
        let err = "kind=monitoring,,x".parse::<Selector>().unwrap_err();
        assert_eq!(err.offset, 16);
        let err = "kind in monitoring".parse::<Selector>().unwrap_err();
        assert_eq!(err.offset, 8);
        assert!(err.message.contains("expected `(`"));
        let err = "kind in (a".parse::<Selector>().unwrap_err();
        assert!(err.message.contains("never closed"));
        let err = "version>=latest".parse::<Selector>().unwrap_err();
        assert!(err.message.contains("not one"), "{err}");
        let err = "provider, in (azure)".parse::<Selector>().unwrap_err();
        assert!(
            err.message.contains("expected an operator after `in`"),
            "{err}"
        );
        let err = "".parse::<Selector>().unwrap_err();
        assert!(err.message.contains("empty selector"));
        let err = "kind in ()".parse::<Selector>().unwrap_err();
        assert!(err.message.contains("empty value"));
        let err = "kind is x".parse::<Selector>().unwrap_err();
        assert!(err.message.contains("found `is`"), "{err}");
    }

    #[test]
    fn yaml_form_parses_and_rejects_bad_keys() {
        let selector: Selector = serde_yaml::from_str(
            "- {key: kind, operator: eq, values: [infrastructure]}\n- {key: provider, operator: In, values: [azure, aws]}\n- {key: size, operator: in, values: [5, true]}",
        )
        .unwrap();
        assert_eq!(selector.expressions()[2].values(), ["5", "true"]);
        let err =
            serde_yaml::from_str::<Selector>("- key: provider,\n  operator: in\n  values: [a]")
                .unwrap_err()
                .to_string();
        assert!(err.contains("invalid label key `provider,`"), "{err}");
        let err = serde_yaml::from_str::<Selector>("- {key: k, operator: in}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one value"), "{err}");
        let err = serde_yaml::from_str::<Selector>("- {key: k, operator: exists, value: [a]}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `value`"), "{err}");
        let err = serde_yaml::from_str::<Selector>("[]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one"), "{err}");
    }
}
