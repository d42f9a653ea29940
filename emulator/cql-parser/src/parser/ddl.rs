//! Schema statements: `CREATE`, `ALTER`, `DROP` of keyspaces, tables,
//! types, indexes and materialized views.

use super::{Parser, Result};
use crate::ast::{
    AlterKeyspace, AlterMaterializedView, AlterTable, AlterTableAction, AlterType, AlterTypeAction,
    ColumnDef, CreateIndex, CreateKeyspace, CreateMaterializedView, CreateTable, CreateType,
    DropKeyspace, DropObject, IndexTarget, Options, Order, Statement,
};
use crate::error::ParseError;
use crate::lexer::Tok;

/// Table-level `WITH` clause contents shared by tables and views.
#[derive(Default)]
struct TableOptions {
    clustering_order: Vec<(String, Order)>,
    compact_storage: bool,
    options: Options,
}

impl Parser<'_> {
    pub(super) fn create(&mut self) -> Result<Statement> {
        self.expect_kw("create")?;
        match self.word_at(0) {
            Some("keyspace" | "schema") => {
                self.bump();
                let if_not_exists = self.if_not_exists()?;
                let name = self.ident()?;
                self.expect_kw("with")?;
                let options = self.properties()?;
                Ok(Statement::CreateKeyspace(CreateKeyspace {
                    name,
                    if_not_exists,
                    options,
                }))
            }
            Some("table" | "columnfamily") => self.create_table().map(Statement::CreateTable),
            Some("type") => {
                self.bump();
                let if_not_exists = self.if_not_exists()?;
                let name = self.qualified_name()?;
                self.expect(&Tok::LParen, "'('")?;
                let mut fields = Vec::new();
                loop {
                    let field = self.ident()?;
                    fields.push((field, self.cql_type()?));
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                self.expect(&Tok::RParen, "')'")?;
                Ok(Statement::CreateType(CreateType {
                    name,
                    if_not_exists,
                    fields,
                }))
            }
            Some("index" | "custom") => self.create_index().map(Statement::CreateIndex),
            Some("materialized") => self.create_view().map(Statement::CreateMaterializedView),
            Some("function" | "aggregate" | "role" | "user" | "trigger" | "service_level") => {
                Err(self.error_here(format!(
                    "unsupported statement 'CREATE {}'",
                    self.current_text().to_ascii_uppercase()
                )))
            }
            _ => Err(self.unexpected("KEYSPACE, TABLE, TYPE, INDEX or MATERIALIZED VIEW")),
        }
    }

    /// `WITH` already consumed: `name = value AND name = value ...`.
    fn properties(&mut self) -> Result<Options> {
        let mut options = Options::default();
        loop {
            self.property(&mut options)?;
            if !self.eat_kw("and") {
                return Ok(options);
            }
        }
    }

    fn property(&mut self, options: &mut Options) -> Result<()> {
        let pos = self.token(0).start;
        let name = self.ident()?;
        self.expect(&Tok::Eq, "'='")?;
        let value = self.option_value()?;
        if options.get(&name).is_some() {
            return Err(ParseError::at(
                self.src,
                pos,
                format!("multiple definitions for property '{name}'"),
            ));
        }
        options.entries.push((name, value));
        Ok(())
    }

    /// `WITH` already consumed: properties plus `CLUSTERING ORDER BY (..)`
    /// and `COMPACT STORAGE`.
    fn table_options(&mut self) -> Result<TableOptions> {
        let mut out = TableOptions::default();
        let mut seen_order = false;
        loop {
            if self.at_kw("clustering") && self.word_at(1) == Some("order") {
                let pos = self.token(0).start;
                self.bump();
                self.bump();
                self.expect_kw("by")?;
                self.expect(&Tok::LParen, "'('")?;
                let order = self.ordering_list()?;
                self.expect(&Tok::RParen, "')'")?;
                if seen_order {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        "CLUSTERING ORDER BY is specified more than once",
                    ));
                }
                seen_order = true;
                out.clustering_order = order;
            } else if self.at_kw("compact") && self.word_at(1) == Some("storage") {
                self.bump();
                self.bump();
                out.compact_storage = true;
            } else {
                self.property(&mut out.options)?;
            }
            if !self.eat_kw("and") {
                return Ok(out);
            }
        }
    }

    /// `PRIMARY KEY` already consumed: `((p1, p2), c1, c2)` or `(p, c1)`.
    fn primary_key(&mut self) -> Result<(Vec<String>, Vec<String>)> {
        self.expect(&Tok::LParen, "'('")?;
        let partition = if self.at(&Tok::LParen) {
            self.ident_list_in_parens()?
        } else {
            vec![self.ident()?]
        };
        let mut clustering = Vec::new();
        while self.eat(&Tok::Comma) {
            clustering.push(self.ident()?);
        }
        self.expect(&Tok::RParen, "')'")?;
        Ok((partition, clustering))
    }

    fn create_table(&mut self) -> Result<CreateTable> {
        self.bump();
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect(&Tok::LParen, "'('")?;
        let mut columns = Vec::new();
        let mut key: Option<(Vec<String>, Vec<String>)> = None;
        loop {
            let pos = self.token(0).start;
            let this_key = if self.at_kw("primary") {
                self.bump();
                self.expect_kw("key")?;
                Some(self.primary_key()?)
            } else {
                let column = self.column_def()?;
                let inline_key = if self.eat_kw("primary") {
                    self.expect_kw("key")?;
                    Some((vec![column.name.clone()], Vec::new()))
                } else {
                    None
                };
                columns.push(column);
                inline_key
            };
            if this_key.is_some() {
                if key.is_some() {
                    return Err(ParseError::at(
                        self.src,
                        pos,
                        "multiple PRIMARY KEY definitions (exactly one required)",
                    ));
                }
                key = this_key;
            }
            if !self.eat(&Tok::Comma) || self.at(&Tok::RParen) {
                break;
            }
        }
        self.expect(&Tok::RParen, "')'")?;
        let opts = if self.eat_kw("with") {
            self.table_options()?
        } else {
            TableOptions::default()
        };
        let (partition_key, clustering_key) = key.unwrap_or_default();
        Ok(CreateTable {
            name,
            if_not_exists,
            columns,
            partition_key,
            clustering_key,
            clustering_order: opts.clustering_order,
            compact_storage: opts.compact_storage,
            options: opts.options,
        })
    }

    /// `name type [STATIC]`
    fn column_def(&mut self) -> Result<ColumnDef> {
        let name = self.ident()?;
        let ty = self.cql_type()?;
        let is_static = self.eat_kw("static");
        Ok(ColumnDef {
            name,
            ty,
            is_static,
        })
    }

    /// `CREATE [CUSTOM] INDEX [IF NOT EXISTS] [name] ON t (targets)
    /// [USING 'class'] [WITH OPTIONS = {...}]`
    fn create_index(&mut self) -> Result<CreateIndex> {
        let custom = self.eat_kw("custom");
        self.expect_kw("index")?;
        let if_not_exists = self.if_not_exists()?;
        let name = if self.at_kw("on") {
            None
        } else {
            Some(self.ident()?)
        };
        self.expect_kw("on")?;
        let table = self.qualified_name()?;
        self.expect(&Tok::LParen, "'('")?;
        let mut targets = Vec::new();
        loop {
            targets.push(self.index_target()?);
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RParen, "')'")?;
        let custom_class = if self.eat_kw("using") {
            match self.peek().clone() {
                Tok::Str(class) => {
                    self.bump();
                    Some(class)
                }
                _ => return Err(self.unexpected("index class name")),
            }
        } else {
            None
        };
        if custom && custom_class.is_none() {
            return Err(self.unexpected("USING 'class' for CUSTOM INDEX"));
        }
        let options = if self.eat_kw("with") {
            self.properties()?
        } else {
            Options::default()
        };
        Ok(CreateIndex {
            name,
            if_not_exists,
            table,
            targets,
            custom_class,
            options,
        })
    }

    fn index_target(&mut self) -> Result<IndexTarget> {
        if self.at(&Tok::LParen) {
            return Ok(IndexTarget::PartitionKey(self.ident_list_in_parens()?));
        }
        let wrapper = match self.word_at(0) {
            Some(w @ ("keys" | "values" | "entries" | "full"))
                if self.peek_n(1) == &Tok::LParen =>
            {
                Some(w.to_string())
            }
            _ => None,
        };
        let Some(wrapper) = wrapper else {
            return Ok(IndexTarget::Column(self.ident()?));
        };
        self.bump();
        self.bump();
        let column = self.ident()?;
        self.expect(&Tok::RParen, "')'")?;
        Ok(match wrapper.as_str() {
            "keys" => IndexTarget::Keys(column),
            "values" => IndexTarget::Values(column),
            "entries" => IndexTarget::Entries(column),
            _ => IndexTarget::Full(column),
        })
    }

    /// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] v AS SELECT .. FROM t
    /// [WHERE ..] PRIMARY KEY (..) [WITH ..]`
    fn create_view(&mut self) -> Result<CreateMaterializedView> {
        self.bump();
        self.expect_kw("view")?;
        let if_not_exists = self.if_not_exists()?;
        let name = self.qualified_name()?;
        self.expect_kw("as")?;
        self.expect_kw("select")?;
        let selection = self.selection()?;
        self.expect_kw("from")?;
        let base_table = self.qualified_name()?;
        let where_clause = if self.eat_kw("where") {
            self.where_clause()?
        } else {
            Vec::new()
        };
        self.expect_kw("primary")?;
        self.expect_kw("key")?;
        let (partition_key, clustering_key) = self.primary_key()?;
        let opts = if self.eat_kw("with") {
            self.table_options()?
        } else {
            TableOptions::default()
        };
        Ok(CreateMaterializedView {
            name,
            if_not_exists,
            selection,
            base_table,
            where_clause,
            partition_key,
            clustering_key,
            clustering_order: opts.clustering_order,
            options: opts.options,
        })
    }

    pub(super) fn alter(&mut self) -> Result<Statement> {
        self.expect_kw("alter")?;
        match self.word_at(0) {
            Some("keyspace" | "schema") => {
                self.bump();
                let name = self.ident()?;
                self.expect_kw("with")?;
                let options = self.properties()?;
                Ok(Statement::AlterKeyspace(AlterKeyspace { name, options }))
            }
            Some("table" | "columnfamily") => {
                self.bump();
                let name = self.qualified_name()?;
                let action = self.alter_table_action()?;
                Ok(Statement::AlterTable(AlterTable { name, action }))
            }
            Some("type") => {
                self.bump();
                let name = self.qualified_name()?;
                let action = if self.eat_kw("add") {
                    let field = self.ident()?;
                    let ty = self.cql_type()?;
                    AlterTypeAction::Add { field, ty }
                } else if self.eat_kw("rename") {
                    AlterTypeAction::Rename(self.renames()?)
                } else {
                    return Err(self.unexpected("ADD or RENAME"));
                };
                Ok(Statement::AlterType(AlterType { name, action }))
            }
            Some("materialized") => {
                self.bump();
                self.expect_kw("view")?;
                let name = self.qualified_name()?;
                self.expect_kw("with")?;
                let options = self.properties()?;
                Ok(Statement::AlterMaterializedView(AlterMaterializedView {
                    name,
                    options,
                }))
            }
            _ => Err(self.unexpected("KEYSPACE, TABLE, TYPE or MATERIALIZED VIEW")),
        }
    }

    fn alter_table_action(&mut self) -> Result<AlterTableAction> {
        if self.eat_kw("add") {
            let mut defs = Vec::new();
            if self.eat(&Tok::LParen) {
                loop {
                    defs.push(self.column_def()?);
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                self.expect(&Tok::RParen, "')'")?;
            } else {
                defs.push(self.column_def()?);
            }
            Ok(AlterTableAction::Add(defs))
        } else if self.eat_kw("drop") {
            let columns = if self.at(&Tok::LParen) {
                self.ident_list_in_parens()?
            } else {
                vec![self.ident()?]
            };
            let timestamp = self.using_timestamp()?;
            Ok(AlterTableAction::Drop { columns, timestamp })
        } else if self.eat_kw("alter") {
            let column = self.ident()?;
            self.expect_kw("type")?;
            let ty = self.cql_type()?;
            Ok(AlterTableAction::AlterType { column, ty })
        } else if self.eat_kw("rename") {
            Ok(AlterTableAction::Rename(self.renames()?))
        } else if self.eat_kw("with") {
            Ok(AlterTableAction::Options(self.properties()?))
        } else {
            Err(self.unexpected("ADD, DROP, ALTER, RENAME or WITH"))
        }
    }

    /// `a TO b AND c TO d`
    fn renames(&mut self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        loop {
            let from = self.ident()?;
            self.expect_kw("to")?;
            out.push((from, self.ident()?));
            if !self.eat_kw("and") {
                return Ok(out);
            }
        }
    }

    pub(super) fn drop_statement(&mut self) -> Result<Statement> {
        self.expect_kw("drop")?;
        let kind = match self.word_at(0) {
            Some("keyspace" | "schema") => {
                self.bump();
                let if_exists = self.if_exists()?;
                let name = self.ident()?;
                return Ok(Statement::DropKeyspace(DropKeyspace { name, if_exists }));
            }
            Some("materialized") => {
                self.bump();
                self.expect_kw("view")?;
                "view"
            }
            Some("table" | "columnfamily") => {
                self.bump();
                "table"
            }
            Some("type") => {
                self.bump();
                "type"
            }
            Some("index") => {
                self.bump();
                "index"
            }
            _ => return Err(self.unexpected("KEYSPACE, TABLE, TYPE, INDEX or MATERIALIZED VIEW")),
        };
        let if_exists = self.if_exists()?;
        let name = self.qualified_name()?;
        let object = DropObject { name, if_exists };
        Ok(match kind {
            "view" => Statement::DropMaterializedView(object),
            "table" => Statement::DropTable(object),
            "type" => Statement::DropType(object),
            _ => Statement::DropIndex(object),
        })
    }
}
