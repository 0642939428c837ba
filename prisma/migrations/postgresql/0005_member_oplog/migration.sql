-- CreateTable
CREATE TABLE "member_op" (
    "space" TEXT NOT NULL,
    "rev" TEXT NOT NULL,
    "op" TEXT NOT NULL,
    "did" TEXT NOT NULL,
    "read" BOOLEAN NOT NULL,
    "write" BOOLEAN NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "member_op_pkey" PRIMARY KEY ("space","rev")
);

-- CreateTable
CREATE TABLE "member_state" (
    "space" TEXT NOT NULL,
    "rev" TEXT NOT NULL,
    "lthash" BYTEA NOT NULL,
    "count" INTEGER NOT NULL,
    "compacted_through" TEXT,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "member_state_pkey" PRIMARY KEY ("space")
);

