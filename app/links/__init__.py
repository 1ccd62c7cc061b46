"""Cross-channel linking: level B (same customer/order) and level C (probable) links stored in
`link_candidates`, level A (same product) computed on read by the timeline (app/cards)."""
