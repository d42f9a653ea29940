//! `SELECT`, `INSERT`, `UPDATE`, `DELETE` and `BATCH`.

use super::{Parser, Result};
use crate::ast::{
    Assignment, Batch, BatchKind, Condition, Delete, DeleteTarget, Insert, InsertJson, Order,
    Select, Statement, Term, Update, UsingClause,
};
use crate::lexer::Tok;

impl Parser<'_> {
    /// `SELECT [JSON] [DISTINCT] selection FROM t [WHERE ..] [GROUP BY ..]
    /// [ORDER BY ..] [PER PARTITION LIMIT n] [LIMIT n] [ALLOW FILTERING]
    /// [BYPASS CACHE] [USING TIMEOUT d]`, the clause order of Scylla's grammar.
    pub(super) fn select(&mut self) -> Result<Select> {
        self.expect_kw("select")?;
        let json = self.select_modifier("json");
        let distinct = self.select_modifier("distinct");
        let selection = self.selection()?;
        self.expect_kw("from")?;
        let table = self.qualified_name()?;
        let where_clause = if self.eat_kw("where") {
            self.where_clause()?
        } else {
            Vec::new()
        };
        let mut group_by = Vec::new();
        if self.eat_kw("group") {
            self.expect_kw("by")?;
            group_by.push(self.ident()?);
            while self.eat(&Tok::Comma) {
                group_by.push(self.ident()?);
            }
        }
        let mut order_by = Vec::new();
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            order_by = self.ordering_list()?;
        }
        let per_partition_limit = if self.at_kw("per") {
            self.bump();
            self.expect_kw("partition")?;
            self.expect_kw("limit")?;
            Some(self.term()?)
        } else {
            None
        };
        let limit = if self.eat_kw("limit") {
            Some(self.term()?)
        } else {
            None
        };
        let allow_filtering = self.eat_kw("allow");
        if allow_filtering {
            self.expect_kw("filtering")?;
        }
        let bypass_cache = self.eat_kw("bypass");
        if bypass_cache {
            self.expect_kw("cache")?;
        }
        let timeout = if self.eat_kw("using") {
            self.expect_kw("timeout")?;
            Some(self.term()?)
        } else {
            None
        };
        Ok(Select {
            distinct,
            json,
            selection,
            table,
            where_clause,
            group_by,
            order_by,
            per_partition_limit,
            limit,
            allow_filtering,
            bypass_cache,
            timeout,
        })
    }

    /// Consumes `JSON`/`DISTINCT` after `SELECT` unless it is really a
    /// column of that name (`SELECT json FROM t`, `SELECT distinct, a ...`).
    fn select_modifier(&mut self, kw: &str) -> bool {
        let is_modifier = self.at_kw(kw)
            && !matches!(
                self.peek_n(1),
                Tok::Comma | Tok::Dot | Tok::LParen | Tok::LBracket | Tok::Eof
            )
            && !matches!(self.word_at(1), Some("from" | "as"));
        if is_modifier {
            self.bump();
        }
        is_modifier
    }

    /// `col [ASC|DESC], ...`
    pub(super) fn ordering_list(&mut self) -> Result<Vec<(String, Order)>> {
        let mut out = Vec::new();
        loop {
            let column = self.ident()?;
            let order = if self.eat_kw("desc") {
                Order::Desc
            } else {
                self.eat_kw("asc");
                Order::Asc
            };
            out.push((column, order));
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    /// `INSERT INTO t (cols) VALUES (terms)` or `INSERT INTO t JSON ...`,
    /// followed by `IF NOT EXISTS` and/or `USING ...` in either order.
    pub(super) fn insert(&mut self) -> Result<Statement> {
        self.expect_kw("insert")?;
        self.expect_kw("into")?;
        let table = self.qualified_name()?;
        if self.eat_kw("json") {
            let json = self.term()?;
            let mut default_unset = false;
            if self.eat_kw("default") {
                if self.eat_kw("unset") {
                    default_unset = true;
                } else if !self.eat_kw("null") {
                    return Err(self.unexpected("NULL or UNSET"));
                }
            }
            let (if_not_exists, using) = self.insert_tail()?;
            return Ok(Statement::InsertJson(InsertJson {
                table,
                json,
                default_unset,
                if_not_exists,
                using,
            }));
        }
        let columns = self.ident_list_in_parens()?;
        self.expect_kw("values")?;
        let values_pos = self.token(0).start;
        self.expect(&Tok::LParen, "'('")?;
        let mut values = vec![self.term()?];
        while self.eat(&Tok::Comma) {
            values.push(self.term()?);
        }
        self.expect(&Tok::RParen, "')'")?;
        if values.len() != columns.len() {
            return Err(crate::error::ParseError::at(
                self.src,
                values_pos,
                format!(
                    "unmatched column names/values: {} columns but {} values",
                    columns.len(),
                    values.len()
                ),
            ));
        }
        let (if_not_exists, using) = self.insert_tail()?;
        Ok(Statement::Insert(Insert {
            table,
            columns,
            values,
            if_not_exists,
            using,
        }))
    }

    fn insert_tail(&mut self) -> Result<(bool, UsingClause)> {
        let mut if_not_exists = false;
        let mut using = UsingClause::default();
        let mut seen_using = false;
        loop {
            if self.at_kw("if") && !if_not_exists {
                if_not_exists = self.if_not_exists()?;
            } else if self.at_kw("using") && !seen_using {
                self.using_clause(&mut using)?;
                seen_using = true;
            } else {
                return Ok((if_not_exists, using));
            }
        }
    }

    /// `USING TTL t AND TIMESTAMP t AND TIMEOUT t` (any subset, any order).
    fn using_clause(&mut self, using: &mut UsingClause) -> Result<()> {
        self.expect_kw("using")?;
        loop {
            let what = self.current_text().to_ascii_uppercase();
            let pos = self.token(0).start;
            let slot = if self.eat_kw("ttl") {
                &mut using.ttl
            } else if self.eat_kw("timestamp") {
                &mut using.timestamp
            } else if self.eat_kw("timeout") {
                &mut using.timeout
            } else {
                return Err(self.unexpected("TTL, TIMESTAMP or TIMEOUT"));
            };
            if slot.is_some() {
                return Err(crate::error::ParseError::at(
                    self.src,
                    pos,
                    format!("{what} is specified more than once"),
                ));
            }
            *slot = Some(self.term()?);
            if !self.eat_kw("and") {
                return Ok(());
            }
        }
    }

    /// `UPDATE t [USING ..] SET a = .., .. WHERE .. [IF ..]`
    pub(super) fn update(&mut self) -> Result<Update> {
        self.expect_kw("update")?;
        let table = self.qualified_name()?;
        let mut using = UsingClause::default();
        if self.at_kw("using") {
            self.using_clause(&mut using)?;
        }
        self.expect_kw("set")?;
        let mut assignments = vec![self.assignment()?];
        while self.eat(&Tok::Comma) {
            assignments.push(self.assignment()?);
        }
        self.expect_kw("where")?;
        let where_clause = self.where_clause()?;
        let condition = self.condition()?;
        Ok(Update {
            table,
            using,
            assignments,
            where_clause,
            condition,
        })
    }

    fn assignment(&mut self) -> Result<Assignment> {
        let column = self.ident()?;
        if self.eat(&Tok::LBracket) {
            let key = self.term()?;
            self.expect(&Tok::RBracket, "']'")?;
            self.expect(&Tok::Eq, "'='")?;
            let value = self.term()?;
            return Ok(Assignment::SetElement { column, key, value });
        }
        if self.eat(&Tok::Dot) {
            let field = self.ident()?;
            self.expect(&Tok::Eq, "'='")?;
            let value = self.term()?;
            return Ok(Assignment::SetField {
                column,
                field,
                value,
            });
        }
        if matches!(self.peek(), Tok::Plus | Tok::Minus) && self.peek_n(1) == &Tok::Eq {
            let add = self.at(&Tok::Plus);
            self.bump();
            self.bump();
            let value = self.term()?;
            return Ok(if add {
                Assignment::Add { column, value }
            } else {
                Assignment::Subtract { column, value }
            });
        }
        self.expect(&Tok::Eq, "'='")?;
        // `c = c + t` / `c = c - t`
        if self.is_ident_at(0) && matches!(self.peek_n(1), Tok::Plus | Tok::Minus) {
            self.same_column(&column)?;
            let add = self.at(&Tok::Plus);
            self.bump();
            let value = self.term()?;
            return Ok(if add {
                Assignment::Add { column, value }
            } else {
                Assignment::Subtract { column, value }
            });
        }
        let value = self.term()?;
        if self.eat(&Tok::Plus) {
            // `c = t + c` (list prepend)
            self.same_column(&column)?;
            return Ok(Assignment::Prepend { column, value });
        }
        Ok(Assignment::Set { column, value })
    }

    /// Consumes the column on the right of `c = c + t`, which must be `c`.
    fn same_column(&mut self, column: &str) -> Result<()> {
        let pos = self.token(0).start;
        let other = self.ident()?;
        if other == column {
            Ok(())
        } else {
            Err(crate::error::ParseError::at(
                self.src,
                pos,
                format!(
                    "only expressions of the form {column} = <value> + {column} or \
                     {column} = {column} +/- <value> are supported, found '{other}'"
                ),
            ))
        }
    }

    /// Optional `IF EXISTS` / `IF cond AND cond ...`.
    fn condition(&mut self) -> Result<Option<Condition>> {
        if !self.eat_kw("if") {
            return Ok(None);
        }
        if self.eat_kw("exists") {
            return Ok(Some(Condition::Exists));
        }
        if self.at_kw("not") {
            return Err(self.error_here("IF NOT EXISTS is only supported by INSERT"));
        }
        Ok(Some(Condition::Columns(self.column_conditions()?)))
    }

    /// `DELETE [targets] FROM t [USING ..] WHERE .. [IF ..]`
    pub(super) fn delete(&mut self) -> Result<Delete> {
        self.expect_kw("delete")?;
        let mut targets = Vec::new();
        if !self.at_kw("from") {
            loop {
                targets.push(self.delete_target()?);
                if !self.eat(&Tok::Comma) {
                    break;
                }
            }
        }
        self.expect_kw("from")?;
        let table = self.qualified_name()?;
        let mut using = UsingClause::default();
        if self.at_kw("using") {
            self.using_clause(&mut using)?;
        }
        self.expect_kw("where")?;
        let where_clause = self.where_clause()?;
        let condition = self.condition()?;
        Ok(Delete {
            targets,
            table,
            using,
            where_clause,
            condition,
        })
    }

    fn delete_target(&mut self) -> Result<DeleteTarget> {
        let column = self.ident()?;
        if self.eat(&Tok::LBracket) {
            let key = self.term()?;
            self.expect(&Tok::RBracket, "']'")?;
            Ok(DeleteTarget::Element { column, key })
        } else if self.eat(&Tok::Dot) {
            let field = self.ident()?;
            Ok(DeleteTarget::Field { column, field })
        } else {
            Ok(DeleteTarget::Column(column))
        }
    }

    /// `BEGIN [UNLOGGED|COUNTER|LOGGED] BATCH [USING ..] stmt; ... APPLY BATCH`
    pub(super) fn batch(&mut self) -> Result<Batch> {
        self.expect_kw("begin")?;
        let kind = if self.eat_kw("unlogged") {
            BatchKind::Unlogged
        } else if self.eat_kw("counter") {
            BatchKind::Counter
        } else {
            self.eat_kw("logged");
            BatchKind::Logged
        };
        self.expect_kw("batch")?;
        let mut using = UsingClause::default();
        if self.at_kw("using") {
            self.using_clause(&mut using)?;
        }
        let mut statements = Vec::new();
        loop {
            let stmt = match self.word_at(0) {
                Some("apply") => break,
                Some("insert") => self.insert()?,
                Some("update") => Statement::Update(self.update()?),
                Some("delete") => Statement::Delete(self.delete()?),
                _ => return Err(self.unexpected("INSERT, UPDATE, DELETE or APPLY BATCH")),
            };
            statements.push(stmt);
            self.eat(&Tok::Semicolon);
        }
        self.expect_kw("apply")?;
        self.expect_kw("batch")?;
        Ok(Batch {
            kind,
            using,
            statements,
        })
    }

    /// `TRUNCATE [TABLE] t [USING TIMEOUT d]`
    pub(super) fn truncate(&mut self) -> Result<crate::ast::Truncate> {
        self.expect_kw("truncate")?;
        if !self.eat_kw("table") {
            self.eat_kw("columnfamily");
        }
        let table = self.qualified_name()?;
        let timeout = if self.eat_kw("using") {
            self.expect_kw("timeout")?;
            Some(self.term()?)
        } else {
            None
        };
        Ok(crate::ast::Truncate { table, timeout })
    }

    /// A `USING TIMESTAMP t` clause on its own (`ALTER TABLE ... DROP`).
    pub(super) fn using_timestamp(&mut self) -> Result<Option<Term>> {
        if !self.eat_kw("using") {
            return Ok(None);
        }
        self.expect_kw("timestamp")?;
        Ok(Some(self.term()?))
    }
}
