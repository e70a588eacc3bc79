//! Bounds on YAML that e did not write, checked before the YAML parser sees it.
//!
//! The parser's time grows with the nesting depth (1 MB of nested `[` takes about 4 s), and
//! a few kilobytes of anchors and aliases expand to billions of nodes (2.4 KB took 30 s before
//! serde_yaml's own repetition limit stopped it). So e first measures the nesting in one
//! linear pass over the bytes ([`scan`]), and counts what aliases would expand to from the
//! parser's events, stopping at the bound ([`alias_expansion`]). Both the repository loader
//! and the state checks use them. Nothing here builds a value or prints.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner as yaml_scanner;

/// The deepest nesting accepted, counted separately for flow collections (`[`, `{`) and for
/// block collections (indented mappings and sequences). Both together stay within
/// serde_yaml's recursion limit of 128, and no repository or state needs more than a few.
pub const MAX_DEPTH: usize = 64;

/// How many nodes aliases may add to a document once expanded, beyond those written out.
pub const MAX_ALIAS_NODES: u64 = 1_000_000;

/// Which kind of nesting passed [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// Flow collections: `[` and `{`.
    Flow,
    /// Block collections: mappings and sequences, by indentation or `- - -`.
    Block,
}

/// Where nesting first passed [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// Flow or block.
    pub nesting: Nesting,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl std::fmt::Display for TooDeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.nesting {
            Nesting::Flow => "brackets",
            Nesting::Block => "indented blocks",
        };
        write!(f, "{what} nest more than {MAX_DEPTH} levels deep")
    }
}

/// What one pass over a YAML text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Where nesting first passed [`MAX_DEPTH`], if it did; the pass stops there.
    pub too_deep: Option<TooDeep>,
    /// Whether the text uses an alias (`*name`) anywhere before that point.
    pub aliases: bool,
    /// Whether a `!` begins a node anywhere before that point: there may be a tag (see
    /// [`first_tag`], which tells for sure).
    pub tags: bool,
}

/// Where nesting first passes [`MAX_DEPTH`], if it does.
pub fn too_deep(source: &str) -> Option<TooDeep> {
    scan(source).too_deep
}

/// Measures nesting and looks for aliases in one pass over the bytes, without parsing.
///
/// It follows YAML closely enough to never count less than a third of the real depth, and to
/// count more only for odd layouts that serializers do not write (plain scalars continued on
/// ever more indented lines): comments, quoted scalars and block scalars (`|`, `>`) are
/// skipped; a `[` or `{` counts where a node can begin (after indentation, `- `, `? `, `: `,
/// a comma, a bracket, an anchor or a tag), so brackets inside plain scalars such as `img[1]`
/// do not; block levels are the stack of indentation columns, plus one per compact `- - `.
pub fn scan(source: &str) -> Scan {
    scan_recording(source, false).0
}

/// The start of a line that begins a node in one of the two outermost block collections: a
/// key of the root mapping, or an item of a sequence that is its value. See [`outline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineStart {
    /// The byte offset of the line's first byte (its indentation included).
    pub offset: usize,
    /// Line, from 1.
    pub line: usize,
    /// How many spaces indent it.
    pub indent: usize,
    /// Whether it begins with the sequence indicator `- `.
    pub item: bool,
}

/// The two outermost block levels of a text, for splitting it into parts that parse alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outline {
    /// What [`scan`] finds.
    pub scan: Scan,
    /// Whether the text has a document marker (`---`, `...`) or a directive (`%YAML`), bar
    /// one `---` before any content: then it may not be one plain document, and no line
    /// start is a safe place to split it.
    pub documents: bool,
    /// In order, every line that begins a node at block depth one or two, outside quoted and
    /// block scalars, comments and brackets (where the scanner knows them, see [`scan`]).
    pub lines: Vec<LineStart>,
}

/// Like [`scan`], and records the lines where a node of the two outermost block levels begins,
/// in the same pass: a loader can cut the text there and parse the parts in parallel.
pub fn outline(source: &str) -> Outline {
    let (scan, lines, documents) = scan_recording(source, true);
    Outline {
        scan,
        documents,
        lines: lines.unwrap_or_default(),
    }
}

fn scan_recording(source: &str, record: bool) -> (Scan, Option<Vec<LineStart>>, bool) {
    let mut scanner = Scanner {
        bytes: source.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        flow: 0,
        blocks: Vec::new(),
        token: Token::NodeStart,
        compact: None,
        block_scalar: None,
        found: Scan::default(),
        lines: record.then(Vec::new),
        documents: false,
        content: false,
    };
    scanner.run();
    (scanner.found, scanner.lines, scanner.documents)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    /// Open flow collections.
    flow: usize,
    /// The columns of the open block collections, innermost last, strictly increasing.
    blocks: Vec<usize>,
    /// Where the scanner stands between tokens.
    token: Token,
    /// After `- `, `? ` (or a `: ` that opens its line) in block context: the indicator's
    /// column. The node that follows on the same line is nested one level deeper.
    compact: Option<usize>,
    /// Inside a block scalar: the column its content must be indented beyond.
    block_scalar: Option<isize>,
    found: Scan,
    /// The outline's line starts, when asked for (see [`outline`]).
    lines: Option<Vec<LineStart>>,
    /// Whether a document marker or a directive was seen (bar one `---` that opens the text).
    documents: bool,
    /// Whether a line with content, or a document marker, was seen.
    content: bool,
}

impl Scanner<'_> {
    fn run(&mut self) {
        let mut at_line_start = true;
        while self.i < self.bytes.len() && self.found.too_deep.is_none() {
            if at_line_start {
                at_line_start = false;
                self.line_start_at();
                continue;
            }
            let byte = self.bytes[self.i];
            match byte {
                b'\n' => {
                    self.newline();
                    at_line_start = true;
                    continue;
                }
                b' ' | b'\t' | b'\r' => {
                    self.i += 1;
                    continue;
                }
                b'#' if self.i == 0 || is_space(self.bytes[self.i - 1]) => {
                    self.skip_to_end_of_line();
                    continue;
                }
                _ => {}
            }
            match self.token {
                Token::NodeStart => self.node(byte),
                Token::Plain | Token::AfterNode => self.inside_scalar(byte),
            }
            if self.token == Token::Plain && self.flow == 0 {
                self.skip_plain();
            }
        }
    }

    /// Inside a plain scalar outside brackets, only a line break, a `:` or a `#` can end it
    /// or change what follows (blanks change nothing, and a `#` looks back at the byte before
    /// it): skips straight to the next of those.
    fn skip_plain(&mut self) {
        self.i = memchr::memchr3(b'\n', b':', b'#', &self.bytes[self.i..])
            .map_or(self.bytes.len(), |ahead| self.i + ahead);
    }

    /// Handles indentation, comment lines, block scalar content and document markers.
    fn line_start_at(&mut self) {
        // A byte order mark is not content where libyaml skips it, at the start of the text;
        // skipped at any line start, it can only make the count higher.
        while self.bytes[self.i..].starts_with(BOM) {
            self.i += BOM.len();
        }
        let start = self.i;
        while self.peek(0) == Some(b' ') {
            self.i += 1;
        }
        let indent = self.i - start;
        let rest = &self.bytes[self.i..];
        let blank = matches!(rest.first(), None | Some(b'\n' | b'\r'));
        let marker = indent == 0
            && (rest.starts_with(b"---") || rest.starts_with(b"..."))
            && rest.get(3).is_none_or(|b| is_space(*b));
        if let Some(parent) = self.block_scalar {
            if !marker && (blank || indent as isize > parent) {
                self.skip_to_end_of_line();
                return;
            }
            self.block_scalar = None;
        }
        if blank || rest.first() == Some(&b'#') {
            self.skip_to_end_of_line();
            return;
        }
        if self.flow > 0 {
            // Inside brackets, line breaks are only spaces.
            return;
        }
        self.compact = None;
        self.token = Token::NodeStart;
        if marker {
            // A `---` before any content only opens the one document.
            let opening = rest.starts_with(b"---") && !self.content;
            self.documents |= !opening;
            self.content = true;
            self.blocks.clear();
            self.i += 3;
            return;
        }
        if indent == 0 && rest.first() == Some(&b'%') {
            self.documents = true;
            self.skip_to_end_of_line();
            return;
        }
        self.content = true;
        while self.blocks.last().is_some_and(|top| *top > indent) {
            self.blocks.pop();
        }
        if self.blocks.last() != Some(&indent) {
            self.push_block(indent);
        }
        if let Some(lines) = &mut self.lines
            && self.blocks.len() <= 2
        {
            lines.push(LineStart {
                offset: start,
                line: self.line,
                indent,
                item: rest.first() == Some(&b'-') && rest.get(1).is_none_or(|b| is_space(*b)),
            });
        }
        if rest.first() == Some(&b':') && rest.get(1).is_none_or(|b| is_space(*b)) {
            // An explicit mapping value (after `? key`) may hold a compact collection.
            self.compact = Some(indent);
            self.i += 1;
        }
    }

    /// A token where a node can begin.
    fn node(&mut self, byte: u8) {
        let column = self.i - self.line_start;
        if self.flow == 0
            && let Some(indicator) = self.compact.take()
        {
            if byte == b'|' || byte == b'>' {
                self.compact = Some(indicator);
            } else if self.blocks.last().is_none_or(|top| *top < column) {
                self.push_block(column);
            }
        }
        let next = self.peek(1);
        let ends = next.is_none_or(is_space);
        match byte {
            b'[' | b'{' => {
                self.flow += 1;
                if self.flow > MAX_DEPTH {
                    self.refuse(Nesting::Flow);
                }
                self.i += 1;
            }
            b']' | b'}' => {
                self.flow = self.flow.saturating_sub(1);
                self.token = Token::AfterNode;
                self.i += 1;
            }
            b',' if self.flow > 0 => self.i += 1,
            b'-' | b'?' if ends => {
                if self.flow == 0 {
                    self.compact = Some(column);
                }
                self.i += 1;
            }
            b':' if ends || (self.flow > 0 && next.is_some_and(is_flow_indicator)) => {
                self.i += 1;
            }
            b'&' => self.skip_token(),
            b'!' => {
                self.found.tags = true;
                self.skip_token();
            }
            b'*' => {
                self.found.aliases = true;
                self.skip_token();
                self.token = Token::AfterNode;
            }
            b'"' | b'\'' => {
                self.skip_quoted(byte);
                self.token = Token::AfterNode;
            }
            b'|' | b'>' if self.flow == 0 => {
                let parent = match self.compact.take() {
                    Some(indicator) => indicator as isize,
                    None => self.blocks.last().map_or(-1, |top| *top as isize),
                };
                self.block_scalar = Some(parent);
                self.skip_to_end_of_line();
            }
            _ => {
                self.token = Token::Plain;
                self.i += 1;
            }
        }
    }

    /// A byte inside a plain scalar, or after a node.
    ///
    /// As in libyaml: inside brackets, a `:` right after a quoted scalar or a collection is a
    /// value indicator whatever follows (`{"a":"b"}`), and a plain scalar ends at a bracket or
    /// comma; elsewhere a `:` is one only before a space.
    fn inside_scalar(&mut self, byte: u8) {
        let next = self.peek(1);
        let after_node = self.token == Token::AfterNode;
        self.token = Token::Plain;
        match byte {
            b':' if next.is_none_or(is_space)
                || (self.flow > 0 && (after_node || next.is_some_and(is_flow_indicator))) =>
            {
                self.token = Token::NodeStart;
            }
            b',' if self.flow > 0 => self.token = Token::NodeStart,
            b']' | b'}' if self.flow > 0 => {
                self.flow -= 1;
                self.token = Token::AfterNode;
            }
            b'[' | b'{' if self.flow > 0 => {
                self.flow += 1;
                self.token = Token::NodeStart;
                if self.flow > MAX_DEPTH {
                    self.refuse(Nesting::Flow);
                }
            }
            _ => {}
        }
        self.i += 1;
    }

    fn push_block(&mut self, column: usize) {
        self.blocks.push(column);
        if self.blocks.len() > MAX_DEPTH {
            self.refuse(Nesting::Block);
        }
    }

    fn refuse(&mut self, nesting: Nesting) {
        self.found.too_deep = Some(TooDeep {
            nesting,
            line: self.line,
            column: self.i - self.line_start + 1,
        });
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.i + ahead).copied()
    }

    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.line_start = self.i;
    }

    fn skip_to_end_of_line(&mut self) {
        self.i = memchr::memchr(b'\n', &self.bytes[self.i..])
            .map_or(self.bytes.len(), |ahead| self.i + ahead);
    }

    /// Skips an anchor, tag or alias name.
    fn skip_token(&mut self) {
        while let Some(byte) = self.peek(0) {
            if is_space(byte) || (self.flow > 0 && is_flow_indicator(byte)) {
                break;
            }
            self.i += 1;
        }
    }

    /// Skips a quoted scalar, which may span lines.
    fn skip_quoted(&mut self, quote: u8) {
        self.i += 1;
        loop {
            // Only the quote, a backslash and a line break matter inside quotes.
            // (A backslash that ends the text leaves `i` past the end.)
            let rest = self.bytes.get(self.i..).unwrap_or_default();
            let Some(ahead) = memchr::memchr3(quote, b'\\', b'\n', rest) else {
                self.i = self.bytes.len();
                return;
            };
            self.i += ahead;
            let byte = self.bytes[self.i];
            match byte {
                b'\\' if quote == b'"' => {
                    self.i += 1;
                    if self.peek(0) == Some(b'\n') {
                        self.newline();
                        continue;
                    }
                }
                b'\'' if quote == b'\'' && self.peek(1) == Some(b'\'') => self.i += 1,
                b'\n' => {
                    self.newline();
                    continue;
                }
                _ if byte == quote => {
                    self.i += 1;
                    return;
                }
                _ => {}
            }
            self.i += 1;
        }
    }
}

/// The byte order mark, in UTF-8.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// Where the scanner stands between tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A node can begin here.
    NodeStart,
    /// Inside a plain scalar.
    Plain,
    /// After a quoted scalar, an alias or a flow collection.
    AfterNode,
}

fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_flow_indicator(byte: u8) -> bool {
    matches!(byte, b',' | b'[' | b']' | b'{' | b'}')
}

/// A YAML tag (`!Secret`, `!!str`) in text e reads. e gives tags no meaning, and serde would
/// drop one without a word (`image: !Secret rel/mod` would run `rel/mod`), so e refuses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The tag as written, `!` included.
    pub tag: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl std::fmt::Display for Tagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the YAML tag `{}` is not allowed: e gives tags no meaning and would read the value without it",
            self.tag
        )
    }
}

/// The first tag of the text, from the YAML scanner's tokens; `None` when there is none (or
/// the text stops scanning before one: the real parser reports that). Call it when [`scan`]
/// saw a `!` where a node begins ([`Scan::tags`]): the byte scan never misses a tag, and the
/// YAML scanner tells a tag from a `!` that continues a plain scalar.
pub fn first_tag(source: &str) -> Option<Tagged> {
    yaml_scanner::Scanner::new(source.chars()).find_map(|yaml_scanner::Token(mark, token)| {
        match token {
            yaml_scanner::TokenType::Tag(handle, suffix) => Some(Tagged {
                tag: format!("{handle}{suffix}"),
                line: mark.line(),
                column: mark.col() + 1,
            }),
            _ => None,
        }
    })
}

/// Counts the nodes of a document with every alias expanded, from the parser's events, and
/// fails as soon as aliases add more than [`MAX_ALIAS_NODES`]; a text that does not parse is
/// left for the real parser to report. Call it only on text that passed [`scan`]: the event
/// parser recurses on block nesting.
pub fn alias_expansion(source: &str) -> Result<u64, String> {
    let mut parser = Parser::new_from_str(source);
    // Per anchor id, the size of its node once expanded; an anchor still open counts zero.
    let mut sizes: Vec<u64> = Vec::new();
    // Open collections: (anchor id, nodes so far).
    let mut open: Vec<(usize, u64)> = Vec::new();
    let (mut written, mut expanded) = (0u64, 0u64);
    loop {
        let Ok((event, _)) = parser.next_token() else {
            return Ok(expanded);
        };
        let (anchor, size) = match event {
            Event::StreamEnd => return Ok(expanded),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                written += 1;
                open.push((anchor, 1));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(closed) => closed,
                None => continue,
            },
            Event::Scalar(_, _, anchor, _) => {
                written += 1;
                (anchor, 1)
            }
            Event::Alias(anchor) => (0, sizes.get(anchor).copied().unwrap_or(0)),
            _ => continue,
        };
        if anchor > 0 {
            if sizes.len() <= anchor {
                sizes.resize(anchor + 1, 0);
            }
            sizes[anchor] = size;
        }
        match open.last_mut() {
            Some((_, total)) => *total = total.saturating_add(size),
            None => expanded = expanded.saturating_add(size),
        }
        // What is still open counts too, so a bomb inside one big collection stops early.
        let pending: u64 = open.iter().fold(0, |sum, (_, n)| sum.saturating_add(*n));
        if expanded.saturating_add(pending) > written.saturating_add(MAX_ALIAS_NODES) {
            return Err(format!(
                "expands YAML aliases to more than {MAX_ALIAS_NODES} nodes beyond the {written} written out"
            ));
        }
    }
}

#[cfg(test)]
mod before;

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(source: &str) -> Option<(Nesting, usize, usize)> {
        too_deep(source).map(|t| (t.nesting, t.line, t.column))
    }

    #[test]
    fn flow_nesting_is_counted_where_collections_begin() {
        let deep = format!("a: {}", "[".repeat(MAX_DEPTH + 1));
        assert_eq!(depth_error(&deep), Some((Nesting::Flow, 1, 4 + MAX_DEPTH)));
        let ok = format!("a: {}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(depth_error(&ok), None);
        // Brackets in plain scalars, quotes and comments are not collections.
        let text = "[".repeat(200);
        for source in [
            format!("a: img{text}\n"),
            format!("a: '{text}'\n"),
            format!("a: \"{text}\\\"{text}\"\n"),
            format!("a: 1 # {text}\n"),
            format!("a: 'it''s {text}'\n"),
            format!("- x\n- \"two\n  lines {text}\"\n"),
            format!("{{\"k\":\"{text}\",\"j\":['{text}']}}\n"),
        ] {
            assert_eq!(depth_error(&source), None, "{source}");
        }
        let json = format!(
            "{}1{}",
            "{\"k\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(depth_error(&json).map(|e| e.0), Some(Nesting::Flow));
        let marked = format!("\u{feff}{}", "[".repeat(MAX_DEPTH + 1));
        assert_eq!(depth_error(&marked).map(|e| e.0), Some(Nesting::Flow));
        // Anchors and tags do not hide a collection.
        let anchored = format!("a: {}", "&x [".repeat(MAX_DEPTH + 1));
        assert_eq!(depth_error(&anchored).map(|e| e.0), Some(Nesting::Flow));
        let tagged = format!("a: {}", "!!seq [".repeat(MAX_DEPTH + 1));
        assert_eq!(depth_error(&tagged).map(|e| e.0), Some(Nesting::Flow));
    }

    #[test]
    fn block_nesting_is_counted_by_indentation_and_compact_sequences() {
        let mut mappings = String::new();
        for level in 0..=MAX_DEPTH {
            mappings.push_str(&format!("{}a:\n", " ".repeat(level)));
        }
        assert_eq!(
            depth_error(&mappings),
            Some((Nesting::Block, MAX_DEPTH + 1, MAX_DEPTH + 1))
        );
        mappings.truncate(mappings.len() - (MAX_DEPTH + 3));
        assert_eq!(depth_error(&mappings), None);
        let dashes = format!("{}a\n", "- ".repeat(MAX_DEPTH + 1));
        assert_eq!(depth_error(&dashes).map(|e| e.0), Some(Nesting::Block));
        let dashes = format!("{}a\n", "- ".repeat(MAX_DEPTH - 1));
        assert_eq!(depth_error(&dashes), None);
        let mut stairs = String::new();
        for level in 0..MAX_DEPTH {
            stairs.push_str(&format!("{}- k:\n", "  ".repeat(level)));
        }
        assert_eq!(depth_error(&stairs).map(|e| e.0), Some(Nesting::Block));
    }

    #[test]
    fn block_scalars_and_documents_do_not_count() {
        let mut art = String::from("script: |\n");
        for level in 1..200 {
            art.push_str(&format!("{}x: [[[[\n", " ".repeat(level)));
        }
        art.push_str("next: 1\n");
        assert_eq!(depth_error(&art), None);
        let listed = format!("- |\n  {}\n- >-\n  b\n", "[".repeat(100));
        assert_eq!(depth_error(&listed), None);
        let nested = format!("- k: |\n   {}\n  j: 1\n", "[".repeat(100));
        assert_eq!(depth_error(&nested), None);
        let mut documents = String::new();
        for _ in 0..100 {
            documents.push_str("---\na:\n b:\n  c: 1\n");
        }
        assert_eq!(depth_error(&documents), None);
    }

    #[test]
    fn real_states_pass() {
        let state = "# comment\nazi:\n  status: applied\n  nodes:\n    - name: n1\n      privateIP: 10.0.0.1\n      tags: {role: [a, b]}\n    - {name: n2}\nbmk:\n  config: |\n    a: [\n  list:\n  - 1\n  - 2\n";
        assert_eq!(scan(state), Scan::default());
        let state: serde_yaml::Value = serde_yaml::from_str(state).unwrap();
        assert!(state.is_mapping());
    }

    #[test]
    fn tags_are_found_where_nodes_begin_and_only_there() {
        for source in [
            "image: !Secret rel/mod:0.1.0\n",
            "a: [1, !!str 2]\n",
            "- !x {a: 1}\n",
            "--- !doc\na: 1\n",
            "a: &anchor !t v\n",
            "!key k: v\n",
            "{\"a\":!t b}\n",
        ] {
            assert!(scan(source).tags, "{source}");
            let tag = first_tag(source).unwrap_or_else(|| panic!("{source}"));
            assert!(tag.tag.starts_with('!'), "{source}: {tag:?}");
        }
        let tag = first_tag("a: 1\nimage: !Secret x\n").unwrap();
        assert_eq!((tag.tag.as_str(), tag.line, tag.column), ("!Secret", 2, 8));
        assert_eq!(first_tag("a: !!str 1\n").unwrap().tag, "!!str");
        for source in [
            "a: b!c\n",
            "a: '!x'\n",
            "a: \"!x\"\n",
            "a: 1 # !x\n",
            "a: |\n  !x\n",
        ] {
            assert!(!scan(source).tags, "{source}");
        }
        // A plain scalar continued on a line that begins with `!`: the scan cannot tell, the
        // parser can.
        let continued = "a: b\n  !c\n";
        assert!(scan(continued).tags);
        assert_eq!(first_tag(continued), None);
    }

    #[test]
    fn aliases_are_found() {
        assert!(scan("a: &x 1\nb: *x\n").aliases);
        assert!(scan("a: [&x 1, *x]\n").aliases);
        assert!(!scan("a: '*x'\nb: 2*3\n").aliases);
    }

    #[test]
    fn alias_expansion_is_bounded() {
        // The mapping, `a`, the sequence and its two items, `b`, and the three again.
        assert_eq!(alias_expansion("a: &x [1, 2]\nb: *x\n"), Ok(9));
        let bomb = |indent: &str| {
            let mut bomb =
                format!("{indent}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
            for i in 1..10 {
                let refs = vec![format!("*a{}", i - 1); 9].join(", ");
                bomb.push_str(&format!("{indent}a{i}: &a{i} [{refs}]\n"));
            }
            bomb
        };
        let err = alias_expansion(&bomb("")).unwrap_err();
        assert!(err.contains("expands YAML aliases"), "{err}");
        // A bomb inside one collection that never closes is stopped too.
        let inside = format!("all:\n{}", bomb("  "));
        assert!(alias_expansion(&inside).is_err());
        // A text that does not parse is left to the real parser.
        assert!(alias_expansion("a: [unclosed").is_ok());
    }
}
