-- CreateTable
CREATE TABLE "invite" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "space" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "read" BOOLEAN NOT NULL,
    "write" BOOLEAN NOT NULL,
    "max_uses" INTEGER,
    "uses" INTEGER NOT NULL DEFAULT 0,
    "expires_at" DATETIME NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "revoked_at" DATETIME
);

-- CreateTable
CREATE TABLE "invite_use" (
    "invite_id" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "at" DATETIME NOT NULL,

    PRIMARY KEY ("invite_id", "did")
);

-- CreateTable
CREATE TABLE "join_request" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "space" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "message" TEXT,
    "status" TEXT NOT NULL,
    "pending_did" TEXT,
    "read" BOOLEAN NOT NULL DEFAULT false,
    "write" BOOLEAN NOT NULL DEFAULT false,
    "reason" TEXT,
    "decided_by" TEXT,
    "created_at" DATETIME NOT NULL,
    "decided_at" DATETIME
);

-- CreateTable
CREATE TABLE "ban" (
    "space" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "reason" TEXT,
    "expires_at" DATETIME,
    "created_by" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,

    PRIMARY KEY ("space", "did")
);

-- CreateTable
CREATE TABLE "join_request_notice" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "space" TEXT NOT NULL,
    "service" TEXT NOT NULL,
    "request_id" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" DATETIME NOT NULL,
    "last_error" TEXT,
    "created_at" DATETIME NOT NULL
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_space" (
    "uri" TEXT NOT NULL PRIMARY KEY,
    "authority_did" TEXT NOT NULL,
    "space_type" TEXT NOT NULL,
    "skey" TEXT NOT NULL,
    "read_policy" TEXT NOT NULL,
    "read_managing_app" TEXT,
    "write_policy" TEXT NOT NULL,
    "write_managing_app" TEXT,
    "app_access" TEXT NOT NULL,
    "credential_ttl_sec" INTEGER NOT NULL,
    "dpop_credential_ttl_sec" INTEGER NOT NULL DEFAULT 300,
    "roster_visibility" TEXT NOT NULL DEFAULT 'owner',
    "join_requests" BOOLEAN NOT NULL DEFAULT false,
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL,
    "deleted_at" DATETIME
);
INSERT INTO "new_space" ("app_access", "authority_did", "created_at", "credential_ttl_sec", "deleted_at", "dpop_credential_ttl_sec", "read_managing_app", "read_policy", "roster_visibility", "skey", "space_type", "updated_at", "uri", "write_managing_app", "write_policy") SELECT "app_access", "authority_did", "created_at", "credential_ttl_sec", "deleted_at", "dpop_credential_ttl_sec", "read_managing_app", "read_policy", "roster_visibility", "skey", "space_type", "updated_at", "uri", "write_managing_app", "write_policy" FROM "space";
DROP TABLE "space";
ALTER TABLE "new_space" RENAME TO "space";
CREATE INDEX "space_authority_did_idx" ON "space"("authority_did");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE UNIQUE INDEX "invite_hash_key" ON "invite"("hash");

-- CreateIndex
CREATE INDEX "invite_space_created_at_idx" ON "invite"("space", "created_at");

-- CreateIndex
CREATE INDEX "join_request_space_status_created_at_idx" ON "join_request"("space", "status", "created_at");

-- CreateIndex
CREATE INDEX "join_request_did_created_at_idx" ON "join_request"("did", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "join_request_space_pending_did_key" ON "join_request"("space", "pending_did");

-- CreateIndex
CREATE INDEX "join_request_notice_next_attempt_at_idx" ON "join_request_notice"("next_attempt_at");

