// Package labca makes the certificates of the lab internet (`mxward lab`) and of the
// test peers: self-signed certificates and a small certificate authority that issues
// CA-valid certificates for chosen names. Keys are ECDSA P-256, generated per run and
// never written anywhere but the caller's own files. Nothing here is fit to secure real
// mail: it exists so that the lab can show what a CA-valid certificate does and does
// not prove.
package labca
