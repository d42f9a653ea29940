//! Where the views of a result live: `sshard_row` and `sshard_value`
//! pointers, made lazily and kept compact, so a result costs little more
//! than its rows' bytes however many cells it has.
//!
//! A view is one 32-bit word: its index in a *view block*, an array of
//! words `[block address (2 words), 0, 1, 2, ...]`. From a view pointer the
//! block is found by stepping back `index + 2` words; the block knows where
//! the bytes and the type of item `index` are. The cells of the rows form
//! one block (made on first use, 4 bytes per cell); each collection, tuple
//! or UDT value whose parts are asked for gets a block of its own (made
//! once, kept with the result). A row view is the view of its first cell,
//! seen as a row. Blocks are never moved nor freed before their result, so
//! every pointer handed out stays valid as long as the result.
//!
//! Why this file has `unsafe`: the step back from a view to its block is
//! pointer arithmetic on pointers the library handed out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::status::{Fail, FfiResult, SSHARD_STATUS_DECODE};
use crate::protocol::response::Rows;
use crate::protocol::value::{split_cell, MAX_VALUE_DEPTH};
use crate::protocol::{ColumnSpec, ColumnType};
use crate::session::Prepared;

/// Words before the views of a block: its address.
const HEADER_WORDS: usize = 2;

/// Type given to columns when the server sent no metadata and none is known.
static UNKNOWN_TYPE: ColumnType = ColumnType::Blob;

/// A view of one value of a result: a cell, or a part of a collection,
/// tuple or UDT value. Valid as long as the result; never freed. (Never
/// constructed: a pointer to one is the address of a view block's word.)
pub struct sshard_value {
    _word: u32,
}

/// A view of one row of a result, valid as long as the result; never
/// freed. (Never constructed, like `sshard_value`.)
pub struct sshard_row {
    _word: u32,
}

/// The columns of a result: the prepared statement's when the server sent
/// the same ones or none (shared: nothing copied), else the decoded ones.
pub(crate) enum Columns {
    Decoded(Vec<ColumnSpec>),
    Prepared(Arc<Prepared>),
}

impl Columns {
    pub(crate) fn as_slice(&self) -> &[ColumnSpec] {
        match self {
            Columns::Decoded(columns) => columns,
            Columns::Prepared(p) => &p.result_metadata.columns,
        }
    }
}

/// One part of a compound value: its type and where its bytes are in the
/// rows' buffer (`len` negative: NULL).
struct Part {
    ty: *const ColumnType,
    start: u32,
    len: i32,
}

enum Items {
    /// The cells of the rows, row after row.
    Cells,
    /// The parts of one compound value.
    Parts(Box<[Part]>),
}

/// A block of views (see the module documentation).
pub(crate) struct ViewBlock {
    words: Box<[u32]>,
    cells: *const ResultCells,
    items: Items,
    depth: usize,
}

impl ViewBlock {
    /// Boxed first, so the address written in its header is final.
    fn new(cells: *const ResultCells, items: Items, count: usize, depth: usize) -> Box<ViewBlock> {
        let mut words = Vec::with_capacity(HEADER_WORDS + count);
        words.extend([0, 0]);
        words.extend((0..count).map(|i| i as u32));
        let mut block = Box::new(ViewBlock {
            words: words.into_boxed_slice(),
            cells,
            items,
            depth,
        });
        let address = (&*block as *const ViewBlock).expose_provenance() as u64;
        block.words[0] = address as u32;
        block.words[1] = (address >> 32) as u32;
        block
    }

    /// Views in the block.
    pub(crate) fn len(&self) -> usize {
        self.words.len() - HEADER_WORDS
    }

    /// The view of item `index` (< `len()`).
    pub(crate) fn view(&self, index: usize) -> *const sshard_value {
        (&self.words[HEADER_WORDS + index] as *const u32).cast()
    }

    fn cells(&self) -> &ResultCells {
        // SAFETY: a block is owned by the `ResultCells` it points to, which
        // is boxed (never moves) and outlives its blocks.
        unsafe { &*self.cells }
    }
}

/// The rows of a result with the views into them. Boxed by the result:
/// blocks point to it.
pub(crate) struct ResultCells {
    rows: Rows,
    columns: Columns,
    top: OnceLock<Box<ViewBlock>>,
    /// Blocks of the compound values asked for, by (block, index).
    parts: Mutex<HashMap<(usize, u32), Box<ViewBlock>>>,
}

// SAFETY: the raw pointers in blocks point into data owned by this
// `ResultCells` (its rows, its columns or the prepared statement it holds),
// never written after construction; the mutable state (`top`, `parts`) is
// behind a `OnceLock` and a `Mutex`.
unsafe impl Send for ResultCells {}
// SAFETY: as above.
unsafe impl Sync for ResultCells {}

impl ResultCells {
    pub(crate) fn new(rows: Rows, columns: Columns) -> Box<ResultCells> {
        Box::new(ResultCells {
            rows,
            columns,
            top: OnceLock::new(),
            parts: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn rows(&self) -> &Rows {
        &self.rows
    }

    pub(crate) fn columns(&self) -> &[ColumnSpec] {
        self.columns.as_slice()
    }

    pub(crate) fn width(&self) -> usize {
        self.rows.metadata.column_count
    }

    pub(crate) fn column_type(&self, column: usize) -> &ColumnType {
        self.columns().get(column).map_or(&UNKNOWN_TYPE, |c| &c.ty)
    }

    /// Bytes held: the rows and every view block made so far.
    #[cfg(test)]
    pub(crate) fn memory(&self) -> usize {
        let block = |b: &ViewBlock| {
            4 * b.words.len()
                + match &b.items {
                    Items::Cells => 0,
                    Items::Parts(parts) => parts.len() * std::mem::size_of::<Part>(),
                }
        };
        let parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        self.rows.memory()
            + self.top.get().map_or(0, |b| block(b))
            + parts.values().map(|b| block(b)).sum::<usize>()
    }

    fn top(&self) -> &ViewBlock {
        self.top
            .get_or_init(|| ViewBlock::new(self, Items::Cells, self.rows.cell_count(), 0))
    }

    /// The view of cell (`row`, `column`), both in range.
    pub(crate) fn value(&self, row: usize, column: usize) -> *const sshard_value {
        self.top().view(row * self.width() + column)
    }

    /// The view of row `row` (in range).
    pub(crate) fn row(&self, row: usize) -> *const sshard_row {
        self.value(row, 0).cast()
    }

    /// The blocks of the parts of `view` (a compound value), made once.
    fn parts_of<'a>(&'a self, view: &View<'a>) -> FfiResult<&'a ViewBlock> {
        let key = (view.block as *const ViewBlock as usize, view.index);
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(block) = parts.get(&key) {
            // SAFETY: blocks in `parts` are boxed, never removed or moved
            // while `self` lives, so the reference may outlive the guard.
            return Ok(unsafe { &*(&**block as *const ViewBlock) });
        }
        let depth = view.block.depth + 1;
        let bytes = view.bytes().unwrap_or_default();
        if depth > MAX_VALUE_DEPTH {
            return Err(view.decode_error());
        }
        let data = self.rows.bytes();
        let split = split_cell(view.ty(), bytes).map_err(|_| view.decode_error())?;
        let items: Box<[Part]> = split
            .into_iter()
            .map(|(ty, part)| Part {
                ty,
                // Parts are slices of the rows' buffer (< 4 GiB).
                start: part.map_or(0, |p| (p.as_ptr() as usize - data.as_ptr() as usize) as u32),
                len: part.map_or(-1, |p| p.len() as i32),
            })
            .collect();
        let count = items.len();
        let block = ViewBlock::new(self, Items::Parts(items), count, depth);
        let pointer = &*block as *const ViewBlock;
        parts.insert(key, block);
        // SAFETY: as above: the box just stored stays put while `self` lives.
        Ok(unsafe { &*pointer })
    }
}

/// A resolved view: its block and index.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    block: &'a ViewBlock,
    index: u32,
}

impl<'a> View<'a> {
    pub(crate) fn ty(&self) -> &'a ColumnType {
        let cells = self.block.cells();
        match &self.block.items {
            Items::Cells => cells.column_type(self.index as usize % cells.width().max(1)),
            // SAFETY: part types point into the result's columns (owned by
            // the same `ResultCells`), alive and unmoved while it lives.
            Items::Parts(parts) => unsafe { &*parts[self.index as usize].ty },
        }
    }

    /// The value's bytes (`None`: NULL).
    pub(crate) fn bytes(&self) -> Option<&'a [u8]> {
        let rows = self.block.cells().rows();
        match &self.block.items {
            Items::Cells => rows.cell_at(self.index as usize),
            Items::Parts(parts) => {
                let part = &parts[self.index as usize];
                let len = usize::try_from(part.len).ok()?;
                let start = part.start as usize;
                Some(&rows.bytes()[start..start + len])
            }
        }
    }

    pub(crate) fn decode_error(&self) -> Fail {
        Fail::new(
            SSHARD_STATUS_DECODE,
            format!(
                "malformed {} value of {} bytes",
                self.ty(),
                self.bytes().map_or(0, <[u8]>::len)
            ),
        )
    }

    /// The views of the value's parts (a list's items, a map's keys and
    /// values alternating, a tuple's elements, a UDT's fields).
    pub(crate) fn parts(&self) -> FfiResult<&'a ViewBlock> {
        self.block.cells().parts_of(self)
    }
}

/// Resolves a view pointer.
///
/// # Safety
/// `ptr` is NULL or a view the library handed out, whose result is alive.
pub(crate) unsafe fn view<'a>(ptr: *const sshard_value) -> FfiResult<View<'a>> {
    if ptr.is_null() {
        return Err(Fail::null("value"));
    }
    let word = ptr.cast::<u32>();
    // SAFETY: `word` is item `index` of a block's word array (contract),
    // so stepping back `index + 2` words stays inside that array and lands
    // on its header, which holds the block's address.
    let block = unsafe {
        let index = *word;
        let base = word.sub(index as usize + HEADER_WORDS);
        let address = u64::from(*base) | u64::from(*base.add(1)) << 32;
        let block = &*std::ptr::with_exposed_provenance::<ViewBlock>(address as usize);
        (block, index)
    };
    Ok(View {
        block: block.0,
        index: block.1,
    })
}

/// A resolved row view: its result's cells and row number.
pub(crate) struct RowView<'a> {
    pub(crate) cells: &'a ResultCells,
    pub(crate) row: usize,
}

impl RowView<'_> {
    pub(crate) fn value(&self, column: usize) -> *const sshard_value {
        self.cells.value(self.row, column)
    }
}

/// Resolves a row pointer.
///
/// # Safety
/// `ptr` is NULL or a row view the library handed out, whose result is
/// alive.
pub(crate) unsafe fn row<'a>(ptr: *const sshard_row) -> FfiResult<RowView<'a>> {
    if ptr.is_null() {
        return Err(Fail::null("row"));
    }
    // SAFETY: a row view is the view of its first cell (forwarded contract).
    let first = unsafe { view(ptr.cast()) }?;
    let cells = first.block.cells();
    Ok(RowView {
        cells,
        row: first.index as usize / cells.width().max(1),
    })
}
