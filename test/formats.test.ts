/** Lexicon formats: space references and the authority read off a checked one. */
import t from 'tap'
import { parseSpaceRef, spaceAuthority } from '../src/lexicon/formats.js'

t.test('spaceAuthority reads the authority of a checked space reference', async (t) => {
  for (const uri of [
    'at://did:plc:abc123abc123abc123abc123/space/com.example.forum/main',
    'at://did:web:localhost%3A2590:u:club/space/com.example.club/k-1',
    'at://did:web:example.com/space/app.bsky.group/3kabcdefghijk',
  ]) {
    const ref = parseSpaceRef(uri)
    if (!ref) throw new Error(`not a space reference: ${uri}`)
    t.equal(spaceAuthority(uri), ref.authority, uri)
  }
  t.equal(spaceAuthority('at://did:plc:x'), 'did:plc:x', 'no path: the rest')
})
