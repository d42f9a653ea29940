//! Types, terms, selectors and `WHERE`/`IF` relations.

use super::{Parser, Result};
use crate::ast::{
    ColumnCondition, ConditionTarget, InValues, Literal, Operator, OptionValue, Predicate,
    QualifiedName, Relation, SelectItem, Selection, Selector, Term,
};
use crate::lexer::Tok;
use crate::types::{CqlType, NativeType};

impl Parser<'_> {
    // ---- types ----------------------------------------------------------

    pub(super) fn cql_type(&mut self) -> Result<CqlType> {
        self.nested(Self::cql_type_inner)
    }

    fn cql_type_inner(&mut self) -> Result<CqlType> {
        match self.peek().clone() {
            Tok::Str(class) => {
                self.bump();
                Ok(CqlType::Custom(class))
            }
            Tok::Word(w) if self.peek_n(1) == &Tok::Lt && is_type_constructor(&w) => {
                self.bump();
                self.bump();
                let ty = match w.as_str() {
                    "frozen" => CqlType::Frozen(Box::new(self.cql_type()?)),
                    "list" => CqlType::List(Box::new(self.cql_type()?)),
                    "set" => CqlType::Set(Box::new(self.cql_type()?)),
                    "map" => {
                        let k = self.cql_type()?;
                        self.expect(&Tok::Comma, "','")?;
                        let v = self.cql_type()?;
                        CqlType::Map(Box::new(k), Box::new(v))
                    }
                    "tuple" => {
                        let mut items = vec![self.cql_type()?];
                        while self.eat(&Tok::Comma) {
                            items.push(self.cql_type()?);
                        }
                        CqlType::Tuple(items)
                    }
                    _ => {
                        let elem = self.cql_type()?;
                        self.expect(&Tok::Comma, "','")?;
                        let dim = match self.peek() {
                            Tok::Integer(t) => t.parse::<u32>().ok().filter(|&n| n > 0),
                            _ => None,
                        };
                        let Some(dim) = dim else {
                            return Err(self.unexpected("vector dimension"));
                        };
                        self.bump();
                        CqlType::Vector(Box::new(elem), dim)
                    }
                };
                self.expect(&Tok::Gt, "'>'")?;
                Ok(ty)
            }
            _ => {
                if let Some(native) = self.word_at(0).and_then(NativeType::from_name) {
                    self.bump();
                    return Ok(CqlType::Native(native));
                }
                if !self.is_ident_at(0) {
                    return Err(self.unexpected("type"));
                }
                let QualifiedName { keyspace, name } = self.qualified_name()?;
                Ok(CqlType::UserDefined { keyspace, name })
            }
        }
    }

    // ---- literals and terms ---------------------------------------------

    /// Consumes a constant (with an optional leading `-` on numbers and
    /// durations) if one is next.
    pub(super) fn literal(&mut self) -> Option<Literal> {
        let negative = self.at(&Tok::Minus)
            && (matches!(
                self.peek_n(1),
                Tok::Integer(_) | Tok::Float(_) | Tok::Duration(_)
            ) || self.word_at(1) == Some("infinity"));
        let sign = if negative { "-" } else { "" };
        let offset = usize::from(negative);
        let lit = match self.peek_n(offset) {
            Tok::Integer(t) => Literal::Integer(format!("{sign}{t}")),
            Tok::Float(t) => Literal::Float(format!("{sign}{t}")),
            Tok::Duration(d) if negative => Literal::Duration(d.negated()),
            Tok::Duration(d) => Literal::Duration(*d),
            Tok::Word(w) if w == "infinity" => Literal::Float(format!("{sign}Infinity")),
            _ if negative => return None,
            Tok::Str(s) => Literal::String(s.clone()),
            Tok::Hex(b) => Literal::Blob(b.clone()),
            Tok::Uuid(u) => Literal::Uuid(*u),
            Tok::Word(w) => match w.as_str() {
                "true" => Literal::Boolean(true),
                "false" => Literal::Boolean(false),
                "null" => Literal::Null,
                "nan" => Literal::Float("NaN".to_string()),
                _ => return None,
            },
            _ => return None,
        };
        for _ in 0..=offset {
            self.bump();
        }
        Some(lit)
    }

    pub(super) fn term(&mut self) -> Result<Term> {
        self.nested(Self::term_inner)
    }

    fn term_inner(&mut self) -> Result<Term> {
        if let Some(lit) = self.literal() {
            return Ok(Term::Literal(lit));
        }
        match self.peek() {
            Tok::QMark | Tok::Colon => Ok(Term::BindMarker(self.bind_marker()?)),
            Tok::LBracket => {
                self.bump();
                let items = self.terms_until(&Tok::RBracket, "']'")?;
                Ok(Term::List(items))
            }
            Tok::LBrace => self.brace_literal(),
            Tok::LParen => self.paren_term(),
            _ if self.at_function_call() => {
                let name = self.function_name()?;
                self.expect(&Tok::LParen, "'('")?;
                let args = self.terms_until(&Tok::RParen, "')'")?;
                Ok(Term::FunctionCall { name, args })
            }
            _ => Err(self.no_viable("a value")),
        }
    }

    /// `?` or `:name`.
    pub(super) fn bind_marker(&mut self) -> Result<crate::ast::BindMarker> {
        if self.eat(&Tok::QMark) {
            return Ok(self.new_marker(None));
        }
        self.expect(&Tok::Colon, "bind marker")?;
        let name = self.ident()?;
        Ok(self.new_marker(Some(name)))
    }

    /// Comma-separated terms up to and including `close`; may be empty.
    fn terms_until(&mut self, close: &Tok, what: &str) -> Result<Vec<Term>> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.term()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(close, what)?;
        Ok(items)
    }

    /// Whether a function call (`f(`, `ks.f(`, `token(`) starts here.
    fn at_function_call(&self) -> bool {
        let name_ok = |n: usize| self.is_ident_at(n) || self.word_at(n) == Some("token");
        name_ok(0)
            && (self.peek_n(1) == &Tok::LParen
                || self.peek_n(1) == &Tok::Dot && name_ok(2) && self.peek_n(3) == &Tok::LParen)
    }

    fn function_name(&mut self) -> Result<QualifiedName> {
        let first = self.function_name_part()?;
        if self.eat(&Tok::Dot) {
            let name = self.function_name_part()?;
            Ok(QualifiedName::qualified(first, name))
        } else {
            Ok(QualifiedName::unqualified(first))
        }
    }

    /// An identifier, or `token`, which is reserved but names a function.
    fn function_name_part(&mut self) -> Result<String> {
        if self.eat_kw("token") {
            Ok("token".to_string())
        } else {
            self.ident()
        }
    }

    /// `{}`, `{a, b}` (set), `{k: v}` (map) or `{field: v}` (UDT).
    fn brace_literal(&mut self) -> Result<Term> {
        self.bump();
        if self.eat(&Tok::RBrace) {
            return Ok(Term::EmptyBraces);
        }
        if self.is_ident_at(0) && self.peek_n(1) == &Tok::Colon {
            let mut fields = Vec::new();
            loop {
                let field = self.ident()?;
                self.expect(&Tok::Colon, "':'")?;
                fields.push((field, self.term()?));
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            self.expect(&Tok::RBrace, "'}'")?;
            return Ok(Term::Udt(fields));
        }
        let first = self.term()?;
        if self.eat(&Tok::Colon) {
            let mut pairs = vec![(first, self.term()?)];
            while self.eat(&Tok::Comma) {
                let k = self.term()?;
                self.expect(&Tok::Colon, "':'")?;
                pairs.push((k, self.term()?));
            }
            self.expect(&Tok::RBrace, "'}'")?;
            Ok(Term::Map(pairs))
        } else {
            let mut items = vec![first];
            while self.eat(&Tok::Comma) {
                items.push(self.term()?);
            }
            self.expect(&Tok::RBrace, "'}'")?;
            Ok(Term::Set(items))
        }
    }

    /// `(type) term` (a cast) or `(a, b, ...)` (a tuple). A term can never be
    /// a bare identifier, so `(word)` followed by a term start is a cast.
    fn paren_term(&mut self) -> Result<Term> {
        self.bump();
        if matches!(self.peek(), Tok::Word(_) | Tok::QuotedIdent(_)) {
            let saved = (self.pos, self.markers);
            if let Ok(ty) = self.cql_type() {
                if self.eat(&Tok::RParen) && self.can_start_term() {
                    let term = self.term()?;
                    return Ok(Term::TypeCast {
                        ty,
                        term: Box::new(term),
                    });
                }
            }
            (self.pos, self.markers) = saved;
        }
        let mut items = vec![self.term()?];
        while self.eat(&Tok::Comma) {
            items.push(self.term()?);
        }
        self.expect(&Tok::RParen, "')'")?;
        Ok(Term::Tuple(items))
    }

    fn can_start_term(&self) -> bool {
        matches!(
            self.peek(),
            Tok::Str(_)
                | Tok::Integer(_)
                | Tok::Float(_)
                | Tok::Hex(_)
                | Tok::Uuid(_)
                | Tok::Duration(_)
                | Tok::QMark
                | Tok::Colon
                | Tok::LParen
                | Tok::LBracket
                | Tok::LBrace
                | Tok::Minus
        ) || matches!(self.peek(), Tok::Word(w) if is_literal_word(w))
            || self.at_function_call()
    }

    // ---- options ----------------------------------------------------------

    /// The value of a `WITH name = value` property.
    pub(super) fn option_value(&mut self) -> Result<OptionValue> {
        if self.eat(&Tok::LBrace) {
            let mut entries = Vec::new();
            if self.eat(&Tok::RBrace) {
                return Ok(OptionValue::Map(entries));
            }
            loop {
                let k = self.option_literal()?;
                self.expect(&Tok::Colon, "':'")?;
                let v = self.option_literal()?;
                entries.push((k, v));
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
            self.expect(&Tok::RBrace, "'}'")?;
            return Ok(OptionValue::Map(entries));
        }
        if let Some(lit) = self.literal() {
            return Ok(OptionValue::Literal(lit));
        }
        if self.is_ident_at(0) {
            return Ok(OptionValue::Identifier(self.ident()?));
        }
        Err(self.unexpected("property value"))
    }

    fn option_literal(&mut self) -> Result<Literal> {
        match self.literal() {
            Some(lit) => Ok(lit),
            None => Err(self.unexpected("constant")),
        }
    }

    // ---- selectors ----------------------------------------------------------

    /// `*` or `selector [AS alias], ...`.
    pub(super) fn selection(&mut self) -> Result<Selection> {
        if self.eat(&Tok::Star) {
            return Ok(Selection::Star);
        }
        let mut items = Vec::new();
        loop {
            let selector = self.selector()?;
            let alias = if self.eat_kw("as") {
                Some(self.ident()?)
            } else {
                None
            };
            items.push(SelectItem { selector, alias });
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        Ok(Selection::Items(items))
    }

    fn selector(&mut self) -> Result<Selector> {
        self.nested(|p| {
            let mut sel = p.selector_atom()?;
            loop {
                if p.at(&Tok::Dot) && p.is_ident_at(1) {
                    p.bump();
                    let field = p.ident()?;
                    sel = Selector::Field {
                        selector: Box::new(sel),
                        field,
                    };
                } else if p.eat(&Tok::LBracket) {
                    let key = p.term()?;
                    p.expect(&Tok::RBracket, "']'")?;
                    sel = Selector::Element {
                        selector: Box::new(sel),
                        key,
                    };
                } else {
                    return Ok(sel);
                }
            }
        })
    }

    fn selector_atom(&mut self) -> Result<Selector> {
        let call = self.peek_n(1) == &Tok::LParen;
        match self.word_at(0) {
            Some("count") if call => {
                let is_count_rows =
                    matches!((self.peek_n(2), self.peek_n(3)), (Tok::Star, Tok::RParen))
                        || matches!(
                            (self.peek_n(2), self.peek_n(3)),
                            (Tok::Integer(n), Tok::RParen) if n == "1"
                        );
                if is_count_rows {
                    for _ in 0..4 {
                        self.bump();
                    }
                    return Ok(Selector::CountRows);
                }
            }
            Some(w @ ("writetime" | "ttl")) if call => {
                let is_writetime = w == "writetime";
                self.bump();
                self.bump();
                let column = self.ident()?;
                self.expect(&Tok::RParen, "')'")?;
                return Ok(if is_writetime {
                    Selector::WriteTime(column)
                } else {
                    Selector::Ttl(column)
                });
            }
            Some("cast") if call => {
                self.bump();
                self.bump();
                let selector = self.selector()?;
                self.expect_kw("as")?;
                let ty = self.cql_type()?;
                self.expect(&Tok::RParen, "')'")?;
                return Ok(Selector::Cast {
                    selector: Box::new(selector),
                    ty,
                });
            }
            _ => {}
        }
        if self.at_function_call() {
            let name = self.function_name()?;
            self.expect(&Tok::LParen, "'('")?;
            let mut args = Vec::new();
            if !self.eat(&Tok::RParen) {
                loop {
                    args.push(self.selector()?);
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                self.expect(&Tok::RParen, "')'")?;
            }
            return Ok(Selector::Function { name, args });
        }
        if self.is_ident_at(0) {
            return Ok(Selector::Column(self.ident()?));
        }
        if self.can_start_term() {
            return Ok(Selector::Term(self.term()?));
        }
        Err(self.no_viable("a selector"))
    }

    // ---- relations and conditions -------------------------------------------

    /// `relation AND relation ...`
    pub(super) fn where_clause(&mut self) -> Result<Vec<Relation>> {
        let mut out = vec![self.relation()?];
        while self.eat_kw("and") {
            out.push(self.relation()?);
        }
        Ok(out)
    }

    fn relation(&mut self) -> Result<Relation> {
        if self.at_kw("token") && self.peek_n(1) == &Tok::LParen {
            self.bump();
            let columns = self.ident_list_in_parens()?;
            let op = self.operator()?;
            let value = self.term()?;
            return Ok(Relation::Token { columns, op, value });
        }
        if self.at(&Tok::LParen) {
            let columns = self.ident_list_in_parens()?;
            let predicate = self.predicate()?;
            return Ok(Relation::MultiColumn { columns, predicate });
        }
        let column = self.ident()?;
        if self.eat_kw("is") {
            self.expect_kw("not")?;
            self.expect_kw("null")?;
            return Ok(Relation::IsNotNull { column });
        }
        if self.eat(&Tok::LBracket) {
            let key = self.term()?;
            self.expect(&Tok::RBracket, "']'")?;
            let predicate = self.predicate()?;
            return Ok(Relation::Element {
                column,
                key,
                predicate,
            });
        }
        let predicate = self.predicate()?;
        Ok(Relation::Column { column, predicate })
    }

    /// `op term` or `IN (...)` / `IN ?`.
    fn predicate(&mut self) -> Result<Predicate> {
        if self.eat_kw("in") {
            if matches!(self.peek(), Tok::QMark | Tok::Colon) {
                return Ok(Predicate::In(InValues::Marker(self.bind_marker()?)));
            }
            self.expect(&Tok::LParen, "'(' or bind marker")?;
            let items = self.terms_until(&Tok::RParen, "')'")?;
            return Ok(Predicate::In(InValues::List(items)));
        }
        let op = self.operator()?;
        let value = self.term()?;
        Ok(Predicate::Compare { op, value })
    }

    fn operator(&mut self) -> Result<Operator> {
        let op = match self.peek() {
            Tok::Eq => Operator::Eq,
            Tok::Neq => Operator::Neq,
            Tok::Lt => Operator::Lt,
            Tok::Lte => Operator::Lte,
            Tok::Gt => Operator::Gt,
            Tok::Gte => Operator::Gte,
            Tok::Word(w) if w == "like" => Operator::Like,
            Tok::Word(w) if w == "contains" => {
                self.bump();
                return Ok(if self.eat_kw("key") {
                    Operator::ContainsKey
                } else {
                    Operator::Contains
                });
            }
            _ => return Err(self.unexpected("operator")),
        };
        self.bump();
        Ok(op)
    }

    /// `c1 op t AND c2[k] op t AND c3.f IN (...)` after `IF`.
    pub(super) fn column_conditions(&mut self) -> Result<Vec<ColumnCondition>> {
        let mut out = Vec::new();
        loop {
            let column = self.ident()?;
            let target = if self.eat(&Tok::LBracket) {
                let key = self.term()?;
                self.expect(&Tok::RBracket, "']'")?;
                ConditionTarget::Element { column, key }
            } else if self.eat(&Tok::Dot) {
                let field = self.ident()?;
                ConditionTarget::Field { column, field }
            } else {
                ConditionTarget::Column(column)
            };
            let predicate = self.predicate()?;
            out.push(ColumnCondition { target, predicate });
            if !self.eat_kw("and") {
                return Ok(out);
            }
        }
    }
}

fn is_type_constructor(word: &str) -> bool {
    matches!(word, "frozen" | "list" | "set" | "map" | "tuple" | "vector")
}

fn is_literal_word(word: &str) -> bool {
    matches!(word, "true" | "false" | "null" | "nan" | "infinity")
}
