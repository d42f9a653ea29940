//! Paging: each `execute` returns one page and the state of the next;
//! these helpers follow the states for callers that want every page.

use super::types::{DriverError, QueryResult, Statement};
use super::Session;

/// Fetches the pages of one statement one at a time.
pub struct Pager {
    session: Session,
    statement: Statement,
    done: bool,
}

impl Pager {
    /// The next page, or `None` after the last one (or after an error).
    pub async fn next_page(&mut self) -> Option<Result<QueryResult, DriverError>> {
        if self.done {
            return None;
        }
        let outcome = self.session.execute(&self.statement).await;
        match &outcome {
            Ok(page) if page.paging_state.is_some() => {
                self.statement.paging_state = page.paging_state.clone();
            }
            _ => self.done = true,
        }
        Some(outcome)
    }

    /// The paging state the next page would start from.
    pub fn paging_state(&self) -> Option<&[u8]> {
        self.statement.paging_state.as_deref()
    }
}

impl Session {
    /// A pager over `statement`, starting from its `paging_state`.
    pub fn pager(&self, statement: Statement) -> Pager {
        Pager {
            session: self.clone(),
            statement,
            done: false,
        }
    }

    /// Every page of `statement`, in order.
    pub async fn execute_all_pages(
        &self,
        statement: &Statement,
    ) -> Result<Vec<QueryResult>, DriverError> {
        let mut pager = self.pager(statement.clone());
        let mut pages = Vec::new();
        while let Some(page) = pager.next_page().await {
            pages.push(page?);
        }
        Ok(pages)
    }
}
