-- CreateTable
CREATE TABLE "audit_entry" (
    "authority_did" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "at" DATETIME NOT NULL,
    "actor" TEXT NOT NULL,
    "door" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "space" TEXT,
    "subject" TEXT,
    "before" TEXT,
    "after" TEXT,
    "outcome" TEXT NOT NULL,
    "reason" TEXT,
    "prev_hash" BLOB NOT NULL,
    "hash" BLOB NOT NULL,

    PRIMARY KEY ("authority_did", "seq")
);

-- CreateTable
CREATE TABLE "audit_head" (
    "authority_did" TEXT NOT NULL PRIMARY KEY,
    "seq" INTEGER NOT NULL,
    "hash" BLOB NOT NULL
);

-- CreateIndex
CREATE INDEX "audit_entry_authority_did_at_idx" ON "audit_entry"("authority_did", "at");

-- CreateIndex
CREATE INDEX "audit_entry_authority_did_actor_seq_idx" ON "audit_entry"("authority_did", "actor", "seq");

-- CreateIndex
CREATE INDEX "audit_entry_authority_did_space_seq_idx" ON "audit_entry"("authority_did", "space", "seq");

-- CreateIndex
CREATE INDEX "audit_entry_authority_did_action_seq_idx" ON "audit_entry"("authority_did", "action", "seq");

