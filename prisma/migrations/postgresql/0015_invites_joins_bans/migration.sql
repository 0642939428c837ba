-- AlterTable
ALTER TABLE "space" ADD COLUMN     "join_requests" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "invite" (
    "id" TEXT NOT NULL,
    "space" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "read" BOOLEAN NOT NULL,
    "write" BOOLEAN NOT NULL,
    "max_uses" INTEGER,
    "uses" INTEGER NOT NULL DEFAULT 0,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,
    "revoked_at" TIMESTAMP(3),

    CONSTRAINT "invite_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "invite_use" (
    "invite_id" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "invite_use_pkey" PRIMARY KEY ("invite_id","did")
);

-- CreateTable
CREATE TABLE "join_request" (
    "id" TEXT NOT NULL,
    "space" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "message" TEXT,
    "status" TEXT NOT NULL,
    "pending_did" TEXT,
    "read" BOOLEAN NOT NULL DEFAULT false,
    "write" BOOLEAN NOT NULL DEFAULT false,
    "reason" TEXT,
    "decided_by" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,
    "decided_at" TIMESTAMP(3),

    CONSTRAINT "join_request_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ban" (
    "space" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "reason" TEXT,
    "expires_at" TIMESTAMP(3),
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ban_pkey" PRIMARY KEY ("space","did")
);

-- CreateTable
CREATE TABLE "join_request_notice" (
    "id" TEXT NOT NULL,
    "space" TEXT NOT NULL,
    "service" TEXT NOT NULL,
    "request_id" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL,
    "last_error" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "join_request_notice_pkey" PRIMARY KEY ("id")
);

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

