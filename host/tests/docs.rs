//! The manual's links, checked: every relative link in the README and in `docs/*.md` must
//! name a file or directory that exists, inside the repository, relative to the page that
//! links to it; and a `#fragment` into another Markdown file must name one of its headings.
//! A page moved or a file renamed then fails the tests instead of leaving a dead link.
//!
//! Links are inline ones, `[text](target)` and `![alt](target)`, and reference-style
//! definitions, `[label]: target`; those inside fenced code blocks and code spans are not
//! links. Targets with a scheme (`https:`, `mailto:`, ...) and links to a heading of the same
//! page (`#anchor` alone) are not checked. Headings are ATX ones (`## Title`), turned into
//! anchors as GitHub does: lower-cased, punctuation other than `-` and `_` dropped, spaces
//! made `-`, and a repeated heading's anchor given `-1`, `-2`, ... Std only, as Markdown
//! text: no renderer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A link's target as written, and the (1-based) line it is on.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// Calls `each` with every line of `text` that is not inside a fenced code block (```` ``` ````
/// or `~~~`), with its 1-based number.
fn prose_lines(text: &str, mut each: impl FnMut(usize, &str)) {
    let mut fence: Option<(char, usize)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |m| trimmed.chars().take_while(|c| *c == m).count());
        match (fence, marker) {
            (None, Some(m)) if run >= 3 => fence = Some((m, run)),
            (Some((f, len)), Some(m))
                if m == f && run >= len && trimmed[run..].trim().is_empty() =>
            {
                fence = None
            }
            (None, _) => each(n + 1, line),
            _ => {}
        }
    }
}

/// `line` with its code spans (`` `...` ``, any number of backticks) blanked out.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('`') {
        out.push_str(&rest[..at]);
        let run = rest[at..].chars().take_while(|c| *c == '`').count();
        let ticks = &rest[at..at + run];
        let after = &rest[at + run..];
        // The span ends at the next run of exactly as many backticks.
        let mut search = 0;
        let close = loop {
            match after[search..].find(ticks) {
                Some(i) => {
                    let start = search + i;
                    let len = after[start..].chars().take_while(|c| *c == '`').count();
                    if len == run {
                        break Some(start);
                    }
                    search = start + len;
                }
                None => break None,
            }
        };
        match close {
            Some(end) => {
                out.push(' ');
                rest = &after[end + run..];
            }
            // An unmatched run is literal backticks.
            None => {
                out.push_str(ticks);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The target at the start of `s` (what follows `](` or `]:`), without a title:
/// `<a b>` or text up to whitespace, stopping at an unbalanced `)`.
fn target_at(s: &str) -> Option<String> {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('<') {
        return inner.find('>').map(|end| inner[..end].to_string());
    }
    let mut depth = 0usize;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => {
                end = i;
                break;
            }
            ')' => depth -= 1,
            c if c.is_whitespace() => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let target = &s[..end];
    (!target.is_empty()).then(|| target.to_string())
}

/// Every link target in the Markdown `text`: inline links and images, and reference
/// definitions; none from code blocks or code spans.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    prose_lines(text, |line, raw| {
        let prose = without_code_spans(raw);
        // A reference definition: up to three spaces, `[label]:`, the target.
        let indent = prose.len() - prose.trim_start_matches(' ').len();
        if indent <= 3 {
            let rest = &prose[indent..];
            if rest.starts_with('[')
                && !rest.starts_with("[^")
                && let Some(close) = rest.find("]:")
                && let Some(target) = target_at(&rest[close + 2..])
            {
                found.push(Link { line, target });
                return;
            }
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            if let Some(target) = target_at(&rest[at + 2..]) {
                found.push(Link { line, target });
            }
            rest = &rest[at + 2..];
        }
    });
    found
}

/// GitHub's anchor for a heading's text.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of the ATX headings of the Markdown `text`, repeats numbered as GitHub does.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    prose_lines(text, |_, line| {
        let trimmed = line.trim_start_matches(' ');
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if line.len() - trimmed.len() > 3 || !(1..=6).contains(&level) {
            return;
        }
        let rest = &trimmed[level..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return; // `#hashtag`, not a heading
        }
        // A closing sequence of `#`s is not part of the heading.
        let text = rest.trim();
        let text = match text.trim_end_matches('#') {
            t if t.is_empty() || t.ends_with([' ', '\t']) => t,
            _ => text,
        };
        let base = slug(text);
        let mut anchor = base.clone();
        let mut n = 0;
        while found.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        found.insert(anchor);
    });
    found
}

/// Whether `target` has a URI scheme (`https:`, `mailto:`): then it is not a path here.
fn has_scheme(target: &str) -> bool {
    match target.find(':') {
        Some(colon) => {
            let scheme = &target[..colon];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// `%XX` escapes decoded (a link to `a%20b.md` names `a b.md`).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What is wrong with the links of `file` (whose text is `text`), one line each; `root` is
/// the repository, which no link may leave.
fn problems(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let dir = file.parent().unwrap();
    for Link { line, target } in links(text) {
        if target.starts_with('#') || has_scheme(&target) {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let at = format!("{}:{line}: `{target}`", file.display());
        let resolved = dir.join(percent_decoded(path));
        let Ok(real) = resolved.canonicalize() else {
            wrong.push(format!("{at}: {} does not exist", resolved.display()));
            continue;
        };
        if !real.starts_with(root) {
            wrong.push(format!(
                "{at}: {} is outside the repository",
                real.display()
            ));
            continue;
        }
        let Some(fragment) = fragment.filter(|f| !f.is_empty()) else {
            continue;
        };
        if real.extension().is_some_and(|e| e == "md") && real.is_file() {
            let headings = anchors(&std::fs::read_to_string(&real).unwrap());
            if !headings.contains(&percent_decoded(fragment).to_lowercase()) {
                wrong.push(format!(
                    "{at}: no heading `#{fragment}` in {}; it has {headings:?}",
                    real.display()
                ));
            }
        }
    }
    wrong
}

/// The repository's root: the host crate's parent.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The README and every page of `docs/`.
fn manual() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "\
# Title
See [the guide](guide.md#setup), ![a picture](img/a.png \"title\") and
[a site](https://example.com/a_(b)) or [mail](mailto:x@example.com).
Not `[code](in-a-span.md)`, nor ``[two](ticks.md)``; but [after](after.md) a span.
[label]: ref/target.md
   [spaced]: <with space.md> \"title\"
[^note]: a footnote, not a link

```toml
x = \"[fenced](fenced.md)\"
```
~~~~
[also fenced](fenced.md)
```
still fenced
~~~~
[last](../last.md) [same page](#title)
";
    let found = links(text);
    let found: Vec<(usize, &str)> = found.iter().map(|l| (l.line, l.target.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "guide.md#setup"),
            (2, "img/a.png"),
            (3, "https://example.com/a_(b)"),
            (3, "mailto:x@example.com"),
            (4, "after.md"),
            (5, "ref/target.md"),
            (6, "with space.md"),
            (17, "../last.md"),
            (17, "#title"),
        ]
    );
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "\
# Running it: commands, signals
## HTTPS and HTTP/2
### The 0.2 contract (2026-12-02)
## Django, from `startproject` to a route ##
## Limits
## Limits
#hashtag
```
# a shell comment
```
";
    let expected = [
        "running-it-commands-signals",
        "https-and-http2",
        "the-02-contract-2026-12-02",
        "django-from-startproject-to-a-route",
        "limits",
        "limits-1",
    ];
    assert_eq!(
        anchors(text),
        expected.iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn a_dead_link_is_reported() {
    let root = root();
    let page = root.join("docs/README.md");
    let text = "[ok](../README.md) [gone](no-such-page.md) [heading](../README.md#no-such-heading) \
                [outside](../../)";
    let wrong = problems(&root, &page, text);
    assert_eq!(wrong.len(), 3, "{wrong:#?}");
    assert!(wrong[0].contains("no-such-page.md") && wrong[0].contains("does not exist"));
    assert!(wrong[1].contains("no heading `#no-such-heading`"));
    assert!(wrong[2].contains("outside the repository"));
}

#[test]
fn the_manuals_links_point_at_what_exists() {
    let root = root();
    let files = manual();
    assert!(files.len() > 2, "no docs/ pages: {files:?}");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        checked += links(&text).len();
        wrong.extend(problems(&root, file, &text));
    }
    assert!(checked > 20, "only {checked} links found in {files:?}");
    assert!(wrong.is_empty(), "dead links:\n{}", wrong.join("\n"));
}
