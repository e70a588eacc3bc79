//! The outline scanner as it was before it skipped plain scalars, comments and quoted
//! scalars with `memchr`, kept to prove the faster one finds exactly the same: the same
//! depth errors, aliases, tags, documents and line starts, on tricky and on random texts.

use super::*;

/// [`super::outline`] as it was, byte by byte.
fn outline_before(source: &str) -> Outline {
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
        lines: Some(Vec::new()),
        documents: false,
        content: false,
    };
    scanner.run();
    Outline {
        scan: scanner.found,
        documents: scanner.documents,
        lines: scanner.lines.unwrap_or_default(),
    }
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
        }
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
        while self.i < self.bytes.len() && self.bytes[self.i] != b'\n' {
            self.i += 1;
        }
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
        while let Some(byte) = self.peek(0) {
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

/// Pieces that change what the scanner does, and plain text between them.
const PIECES: &[&str] = &[
    "a",
    "key",
    "img[1]",
    "b:c",
    "x#y",
    " ",
    "  ",
    "\t",
    "\r",
    "\n",
    "\n",
    "\n",
    "\n  ",
    "\n    ",
    "\n- ",
    "\n  - ",
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "#",
    " # c",
    " #",
    "[",
    "]",
    "{",
    "}",
    ",",
    ", ",
    "'",
    "\"",
    "''",
    "\\",
    "\\\"",
    "\\\n",
    "|",
    "|-\n",
    ">",
    "&x ",
    "&x",
    "*x",
    "!t ",
    "!",
    "!!str ",
    "---",
    "--- ",
    "...",
    "\n---\n",
    "\n...\n",
    "%YAML 1.2\n",
    "\u{feff}",
    "é",
    ":\n",
    "a: 'q''s #'\n",
    "k: \"a\\\"b\n c\"\n",
    "s: |\n  [[[\n  ]\n",
];

fn random_text(random: &mut fastrand::Rng) -> String {
    let mut text = String::new();
    for _ in 0..random.usize(..60) {
        text.push_str(PIECES[random.usize(..PIECES.len())]);
    }
    text
}

fn assert_same(source: &str) {
    assert_eq!(outline(source), outline_before(source), "{source:?}");
    assert_eq!(scan(source), outline_before(source).scan, "{source:?}");
}

#[test]
fn random_texts_outline_as_before() {
    // Seeded, so that a failure replays.
    let mut random = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    for _ in 0..50_000 {
        assert_same(&random_text(&mut random));
    }
}

#[test]
fn tricky_texts_outline_as_before() {
    let deep_flow = format!("a: {}", "[".repeat(MAX_DEPTH + 1));
    let deep_json = format!("{}1{}", "{\"k\":".repeat(70), "}".repeat(70));
    let mut deep_block = String::new();
    for level in 0..=MAX_DEPTH {
        deep_block.push_str(&format!("{}a: x y # z\n", " ".repeat(level)));
    }
    let mut repository = String::from("---\ncomponents:\n");
    for i in 0..50 {
        repository.push_str(&format!(
            "- name: m{i} # the module\n  image: \"reg/m{i}:1.0\"\n  labels: {{kind: monitoring, tier: [a, b]}}\n  \
             text: 'it''s: #{i}'\n  script: |\n    echo [ {i}\n  ref: *x\n  tag: !t v\n  k:v: w#x\n"
        ));
    }
    for source in [
        "",
        "a",
        "a:",
        "a: b",
        "a: b\\",
        "a: \"b\\",
        "a: 'b",
        "a: b#c # d\nk: v",
        "a: b:c: d\n",
        "a: b :c\n",
        "a: x\r\nb: y\r\n",
        "- a: [b, {c: d}]\n  e: f\n",
        "{\"a\":\"b\",\"c\":[1,2]}\n",
        "a: 'x\n  y' # z\nb: 1\n",
        "? k\n: v\n",
        "a: b\n  !c\n",
        "a: b\n---\nc: d\n",
        "\u{feff}a: b\n",
        &deep_flow,
        &deep_json,
        &deep_block,
        &repository,
    ] {
        assert_same(source);
    }
}
