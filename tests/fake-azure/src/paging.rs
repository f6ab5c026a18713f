//! Opaque page tokens and page sizes shared by the Graph and ARM collections.
//!
//! A token is `X'<hex>'` like Graph's: the position, obfuscated with a per-server key and bound to the
//! collection path by a MAC, so a client that edits or reuses one elsewhere gets a 400, not wrong data.

use std::ops::Range;

use crate::ids::{fnv1a, mix64};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCursor {
    /// 0-based number of the page the token points at.
    pub page_index: u32,
    pub offset: usize,
}

impl PageCursor {
    pub const FIRST: PageCursor = PageCursor { page_index: 0, offset: 0 };
}

pub struct PageTokens {
    key: u64,
}

impl PageTokens {
    pub fn new(key: u64) -> Self {
        PageTokens { key }
    }

    /// The token text as it appears decoded in a query: `X'…'`.
    pub fn encode(&self, collection: &str, cursor: PageCursor) -> String {
        let salt = self.salt(collection);
        let position = (cursor.offset as u64) ^ mix64(salt);
        let page = cursor.page_index ^ (mix64(salt ^ 1) as u32);
        let mac = self.mac(salt, cursor);
        format!("X'{position:016X}{page:08X}{mac:08X}'")
    }

    pub fn decode(&self, collection: &str, token: &str) -> Option<PageCursor> {
        let hex = token.strip_prefix("X'")?.strip_suffix('\'')?;
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let salt = self.salt(collection);
        let position = u64::from_str_radix(&hex[..16], 16).ok()? ^ mix64(salt);
        let page = u32::from_str_radix(&hex[16..24], 16).ok()? ^ (mix64(salt ^ 1) as u32);
        let mac = u32::from_str_radix(&hex[24..], 16).ok()?;
        let cursor = PageCursor { page_index: page, offset: usize::try_from(position).ok()? };
        (self.mac(salt, cursor) == mac).then_some(cursor)
    }

    fn salt(&self, collection: &str) -> u64 {
        self.key ^ fnv1a(collection.to_ascii_lowercase().as_bytes())
    }

    fn mac(&self, salt: u64, cursor: PageCursor) -> u32 {
        (mix64(salt ^ mix64(cursor.offset as u64) ^ u64::from(cursor.page_index).rotate_left(40)) >> 32) as u32
    }
}

/// Which items a page holds and where the next page starts, if anywhere.
pub struct Page {
    pub items: Range<usize>,
    pub next: Option<PageCursor>,
}

/// Plans one page of `total` items. With `short_pages`, every third page holds only half of `top`
/// items yet still links onward, as Graph does: clients must follow nextLinks, not count items.
pub fn plan_page(total: usize, top: usize, cursor: PageCursor, short_pages: bool) -> Page {
    let len = if short_pages && cursor.page_index % 3 == 2 { (top / 2).max(1) } else { top };
    let start = cursor.offset.min(total);
    let end = start.saturating_add(len).min(total);
    let next = (end < total).then_some(PageCursor { page_index: cursor.page_index + 1, offset: end });
    Page { items: start..end, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_for_its_collection_only() {
        let tokens = PageTokens::new(42);
        let cursor = PageCursor { page_index: 7, offset: 1234 };
        let token = tokens.encode("/v1.0/users", cursor);
        assert_eq!(tokens.decode("/v1.0/users", &token), Some(cursor));
        assert_eq!(tokens.decode("/v1.0/groups", &token), None);
    }

    #[test]
    fn edited_token_is_rejected() {
        let tokens = PageTokens::new(42);
        let token = tokens.encode("/v1.0/users", PageCursor { page_index: 1, offset: 5 });
        let edited = token.replacen(&token[2..3], if &token[2..3] == "0" { "1" } else { "0" }, 1);
        assert_eq!(tokens.decode("/v1.0/users", &edited), None);
    }

    #[test]
    fn every_third_page_is_short_but_links_onward() {
        let third = plan_page(100, 10, PageCursor { page_index: 2, offset: 20 }, true);
        assert_eq!(third.items, 20..25);
        assert_eq!(third.next, Some(PageCursor { page_index: 3, offset: 25 }));
    }

    #[test]
    fn last_page_has_no_next() {
        let page = plan_page(5, 10, PageCursor::FIRST, true);
        assert_eq!(page.items, 0..5);
        assert_eq!(page.next, None);
    }
}
