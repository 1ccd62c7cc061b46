"""Cross-channel linking: level B (same customer/order) and level C (probable) links stored in
`link_candidates`, level A (same product) computed on read, and the timeline across channels."""
