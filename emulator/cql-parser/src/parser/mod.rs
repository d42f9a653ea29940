//! Recursive-descent parser over the token stream.
//!
//! Split by area: `ddl` (schema statements), `dml` (select/insert/update/
//! delete/batch) and `expr` (types, terms, selectors, relations).

mod ddl;
mod dml;
mod expr;

use crate::ast::{BindMarker, QualifiedName, Statement, Term};
use crate::error::ParseError;
use crate::keywords::is_reserved;
use crate::lexer::{tokenize, Tok, Token};
use crate::types::CqlType;

/// Maximum nesting of terms, types and selectors. Real statements nest a
/// handful of levels; the limit turns hostile input like `[[[[...` into an
/// error instead of a stack overflow.
const MAX_DEPTH: usize = 64;

type Result<T> = std::result::Result<T, ParseError>;

pub(crate) struct Parser<'a> {
    src: &'a str,
    /// Never empty: the last token is always `Tok::Eof`.
    toks: Vec<Token>,
    pos: usize,
    /// Bind markers seen so far; the next marker gets this index.
    markers: usize,
    depth: usize,
}

/// Parses exactly one statement with an optional trailing `;`.
pub(crate) fn parse_statement(src: &str) -> Result<Statement> {
    let mut p = Parser::new(src)?;
    let stmt = p.statement()?;
    p.eat(&Tok::Semicolon);
    p.expect_eof()?;
    Ok(stmt)
}

/// Parses `;`-separated statements (a schema script).
pub(crate) fn parse_script(src: &str) -> Result<Vec<Statement>> {
    let mut p = Parser::new(src)?;
    let mut out = Vec::new();
    loop {
        while p.eat(&Tok::Semicolon) {}
        if p.at(&Tok::Eof) {
            return Ok(out);
        }
        // Each statement numbers its own bind markers.
        p.markers = 0;
        out.push(p.statement()?);
        if !p.eat(&Tok::Semicolon) {
            p.expect_eof()?;
        }
    }
}

/// Parses a whole type expression.
pub(crate) fn parse_type(src: &str) -> Result<CqlType> {
    let mut p = Parser::new(src)?;
    let ty = p.cql_type()?;
    p.expect_eof()?;
    Ok(ty)
}

pub(crate) fn parse_term(src: &str) -> Result<Term> {
    let mut p = Parser::new(src)?;
    let term = p.term()?;
    p.expect_eof()?;
    Ok(term)
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Self> {
        Ok(Parser {
            src,
            toks: tokenize(src)?,
            pos: 0,
            markers: 0,
            depth: 0,
        })
    }

    // ---- token access -------------------------------------------------

    fn token(&self, n: usize) -> &Token {
        let last = self.toks.len() - 1;
        &self.toks[(self.pos + n).min(last)]
    }

    fn peek(&self) -> &Tok {
        &self.token(0).kind
    }

    fn peek_n(&self, n: usize) -> &Tok {
        &self.token(n).kind
    }

    fn bump(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    fn at(&self, t: &Tok) -> bool {
        self.peek() == t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        let found = self.at(t);
        if found {
            self.bump();
        }
        found
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn word_at(&self, n: usize) -> Option<&str> {
        match self.peek_n(n) {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn at_kw(&self, kw: &str) -> bool {
        self.word_at(0) == Some(kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let found = self.at_kw(kw);
        if found {
            self.bump();
        }
        found
    }

    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&kw.to_ascii_uppercase()))
        }
    }

    fn expect_eof(&self) -> Result<()> {
        if self.at(&Tok::Eof) {
            Ok(())
        } else {
            Err(self.error_here(format!(
                "extraneous input '{}' expecting end of statement",
                self.current_text()
            )))
        }
    }

    // ---- errors -------------------------------------------------------

    /// Source text of the current token, shortened for messages.
    fn current_text(&self) -> String {
        let t = self.token(0);
        if t.kind == Tok::Eof {
            return "<EOF>".to_string();
        }
        let text = &self.src[t.start..t.end];
        if text.chars().count() > 40 {
            let short: String = text.chars().take(37).collect();
            format!("{short}...")
        } else {
            text.to_string()
        }
    }

    fn error_here(&self, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.src, self.token(0).start, msg)
    }

    /// "mismatched input 'X' expecting Y", Cassandra's wording.
    fn unexpected(&self, expecting: &str) -> ParseError {
        if self.at(&Tok::Eof) {
            self.error_here(format!("unexpected end of input, expecting {expecting}"))
        } else {
            self.error_here(format!(
                "mismatched input '{}' expecting {expecting}",
                self.current_text()
            ))
        }
    }

    /// For positions where no alternative applies at all; `expecting`
    /// only shows when the input ended early.
    fn no_viable(&self, expecting: &str) -> ParseError {
        if self.at(&Tok::Eof) {
            self.error_here(format!("unexpected end of input, expecting {expecting}"))
        } else {
            self.error_here(format!(
                "no viable alternative at input '{}'",
                self.current_text()
            ))
        }
    }

    // ---- recursion guard ----------------------------------------------

    /// Runs `f` one nesting level deeper, failing past `MAX_DEPTH`.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_here("expression nested too deeply"));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    // ---- identifiers --------------------------------------------------

    /// Whether token `n` can be an identifier (unreserved word or quoted).
    fn is_ident_at(&self, n: usize) -> bool {
        match self.peek_n(n) {
            Tok::Word(w) => !is_reserved(w),
            Tok::QuotedIdent(_) => true,
            _ => false,
        }
    }

    fn ident(&mut self) -> Result<String> {
        let name = match self.peek() {
            Tok::Word(w) if !is_reserved(w) => w.clone(),
            Tok::QuotedIdent(s) => s.clone(),
            _ => return Err(self.unexpected("identifier")),
        };
        self.bump();
        Ok(name)
    }

    /// `name` or `keyspace.name`.
    fn qualified_name(&mut self) -> Result<QualifiedName> {
        let first = self.ident()?;
        if self.eat(&Tok::Dot) {
            let name = self.ident()?;
            Ok(QualifiedName::qualified(first, name))
        } else {
            Ok(QualifiedName::unqualified(first))
        }
    }

    /// `( ident, ident, ... )`, at least one.
    fn ident_list_in_parens(&mut self) -> Result<Vec<String>> {
        self.expect(&Tok::LParen, "'('")?;
        let mut out = vec![self.ident()?];
        while self.eat(&Tok::Comma) {
            out.push(self.ident()?);
        }
        self.expect(&Tok::RParen, "')'")?;
        Ok(out)
    }

    /// Optional `IF NOT EXISTS`.
    fn if_not_exists(&mut self) -> Result<bool> {
        if self.eat_kw("if") {
            self.expect_kw("not")?;
            self.expect_kw("exists")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Optional `IF EXISTS`.
    fn if_exists(&mut self) -> Result<bool> {
        if self.eat_kw("if") {
            self.expect_kw("exists")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn new_marker(&mut self, name: Option<String>) -> BindMarker {
        let index = self.markers;
        self.markers += 1;
        BindMarker { index, name }
    }

    // ---- statements ---------------------------------------------------

    fn statement(&mut self) -> Result<Statement> {
        let Some(word) = self.word_at(0) else {
            return Err(self.no_viable("a statement"));
        };
        match word {
            "select" => self.select().map(Statement::Select),
            "insert" => self.insert(),
            "update" => self.update().map(Statement::Update),
            "delete" => self.delete().map(Statement::Delete),
            "begin" => self.batch().map(Statement::Batch),
            "use" => {
                self.bump();
                Ok(Statement::Use(self.ident()?))
            }
            "create" => self.create(),
            "alter" => self.alter(),
            "drop" => self.drop_statement(),
            "truncate" => self.truncate().map(Statement::Truncate),
            "grant" | "revoke" | "list" | "describe" | "desc" => {
                Err(self.error_here(format!("unsupported statement '{}'", self.current_text())))
            }
            _ => Err(self.no_viable("a statement")),
        }
    }
}
