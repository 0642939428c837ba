-- CreateTable
CREATE TABLE "space_event" (
    "space" TEXT NOT NULL,
    "space_rev" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "repo" TEXT,
    "repo_rev" TEXT,
    "hash" BYTEA,
    "prev_space_rev" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "space_event_pkey" PRIMARY KEY ("space","space_rev")
);

-- CreateTable
CREATE TABLE "notify_registration" (
    "space" TEXT NOT NULL,
    "service" TEXT NOT NULL,
    "endpoint" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,
    "cursor" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL,
    "last_error" TEXT,

    CONSTRAINT "notify_registration_pkey" PRIMARY KEY ("space","service")
);

-- CreateTable
CREATE TABLE "dead_letter" (
    "id" TEXT NOT NULL,
    "space" TEXT NOT NULL,
    "service" TEXT NOT NULL,
    "space_rev" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL,
    "last_error" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "dead_letter_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "space_event_created_at_idx" ON "space_event"("created_at");

-- CreateIndex
CREATE INDEX "notify_registration_next_attempt_at_idx" ON "notify_registration"("next_attempt_at");

-- CreateIndex
CREATE INDEX "dead_letter_space_service_idx" ON "dead_letter"("space", "service");

