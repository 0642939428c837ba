-- CreateTable
CREATE TABLE "api_token" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "authority_did" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "space" TEXT,
    "hash" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "expires_at" DATETIME,
    "revoked_at" DATETIME,
    "last_used_at" DATETIME
);

-- CreateTable
CREATE TABLE "manager_session" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "did" TEXT NOT NULL,
    "csrf_token" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,
    "last_seen_at" DATETIME NOT NULL,
    "expires_at" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "oauth_store" (
    "kind" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" BLOB NOT NULL,
    "expires_at" DATETIME,
    "updated_at" DATETIME NOT NULL,

    PRIMARY KEY ("kind", "key")
);

-- CreateTable
CREATE TABLE "idempotent_response" (
    "principal" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "status" INTEGER NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL,

    PRIMARY KEY ("principal", "key")
);

-- CreateIndex
CREATE UNIQUE INDEX "api_token_hash_key" ON "api_token"("hash");

-- CreateIndex
CREATE INDEX "api_token_authority_did_created_at_idx" ON "api_token"("authority_did", "created_at");

-- CreateIndex
CREATE INDEX "manager_session_did_idx" ON "manager_session"("did");

-- CreateIndex
CREATE INDEX "manager_session_expires_at_idx" ON "manager_session"("expires_at");

-- CreateIndex
CREATE INDEX "oauth_store_expires_at_idx" ON "oauth_store"("expires_at");

-- CreateIndex
CREATE INDEX "idempotent_response_created_at_idx" ON "idempotent_response"("created_at");

